"""Studio pages: every list, form, the dashboard and the transcript; search, filters, sorting,
pagination, relation links, and what must never appear (hashes, unescaped HTML)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest

from coach_db import ConversationSession, Message, MessageRole, SessionStatus, User
from coach_db.passwords import hash_password
from tests.factories import make_message, make_scenario, make_session, make_user

RESOURCES = ("user", "scenario", "conversationsession", "message")
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'


def tags_in(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag of a page with its attributes, as a browser parses them."""
    found: list[tuple[str, dict[str, str | None]]] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: found.append((tag, dict(attrs)))  # type: ignore[method-assign]
    parser.feed(html)
    return found


def ids_in(html: str) -> list[int]:
    """Row ids of a list page, in order (from the bulk-select checkboxes)."""
    return [int(i) for i in re.findall(r'data-id="(\d+)"', html)]


async def every_page(client: Any) -> dict[str, str]:
    """The HTML of every studio page with at least one row in each table."""
    message = await Message.first()
    assert message is not None
    session = await ConversationSession.get(pk=message.session_id)
    pks = {
        "user": session.user_id,
        "scenario": session.scenario_id,
        "conversationsession": session.pk,
        "message": message.pk,
    }
    paths = ["/admin/", "/admin/password", f"/admin/conversationsession/transcript/{session.pk}"]
    for resource in RESOURCES:
        paths += [
            f"/admin/{resource}/list",
            f"/admin/{resource}/create",
            f"/admin/{resource}/update/{pks[resource]}",
        ]
    pages = {}
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        pages[path] = response.text
    return pages


async def test_every_page_renders_styled_with_local_assets_only(staff: Any) -> None:
    await make_message()
    for path, html in (await every_page(staff)).items():
        assert "/admin/static/tabler/css/tabler.min.css" in html, path
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), path  # no CDN
        assert "@latest" not in html, path


async def test_password_hash_is_never_shown(staff: Any) -> None:
    user = await make_user(password_hash=hash_password("a user's password"))
    await make_message(session=await make_session(user=user))
    hashes = [u.password_hash for u in await User.all() if u.password_hash]
    for path, html in (await every_page(staff)).items():
        assert "password_hash" not in html, path
        assert "$argon2" not in html, path
        assert not any(h in html for h in hashes), path
    edit = await staff.get(f"/admin/user/update/{user.pk}")
    [field] = [attrs for tag, attrs in tags_in(edit.text) if attrs.get("name") == "password"]
    assert field["type"] == "password" and field.get("value") in (None, "")


async def test_stored_html_is_rendered_escaped_everywhere(staff: Any) -> None:
    """fastapi-admin's list renders cells with |safe: message content must not run."""
    user = await make_user(username=XSS)
    scenario = await make_scenario(name=XSS)
    session = await make_session(user=user, scenario=scenario)
    await make_message(session=session, content=XSS, metadata={"note": XSS, "x": "</script>"})
    for path, html in (await every_page(staff)).items():
        assert "<script>alert" not in html, path
        assert not [attrs for _, attrs in tags_in(html) if "onerror" in attrs], path
        assert "<img src=x" not in html, path
    messages = await staff.get("/admin/message/list")
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in messages.text


async def test_dashboard_counts(staff: Any) -> None:
    await make_scenario(is_active=False)
    active = await make_scenario(is_active=True)
    now = datetime.now(UTC)
    # Durations come from the times (database triggers): 10 and 20 minutes.
    await make_session(
        scenario=active,
        status=SessionStatus.COMPLETED,
        started_at=now - timedelta(days=50),
        ended_at=now - timedelta(days=50) + timedelta(minutes=10),
    )
    await make_session(
        scenario=active,
        status=SessionStatus.ABANDONED,
        started_at=now - timedelta(minutes=30),
        ended_at=now - timedelta(minutes=10),
    )
    ongoing = await make_session(scenario=active, started_at=now - timedelta(days=45))
    await make_message(session=ongoing)
    await make_message(session=ongoing, timestamp=now - timedelta(days=3))
    await make_message(session=ongoing, timestamp=now - timedelta(days=40))  # outside the window
    html = (await staff.get("/admin/")).text
    assert re.search(r'id="stat-users">\s*4\s*<', html)  # 3 session users + the staff member
    assert re.search(r'id="stat-active-scenarios">\s*1\s*<', html)
    assert "Active: 1" in html and "Completed: 1" in html and "Abandoned: 1" in html
    assert re.search(r'id="stat-average-duration">\s*15 min 0 s', html)
    days = re.findall(r'data-day="([\d-]+)" data-count="(\d+)"', html)
    assert len(days) == 30
    assert days[-1] == (now.date().isoformat(), "1")
    assert dict(days)[(now - timedelta(days=3)).date().isoformat()] == "1"
    assert sum(int(count) for _, count in days) == 2


async def test_dashboard_of_an_empty_database(staff: Any) -> None:
    html = (await staff.get("/admin/")).text
    assert "Active: 0" in html and re.search(r'id="stat-average-duration">\s*\N{EN DASH}', html)
    assert "No messages yet." in html


async def test_dashboard_names_the_latest_message_when_the_month_is_empty(staff: Any) -> None:
    session = await make_session(started_at=datetime(2025, 8, 1, tzinfo=UTC))
    await make_message(session=session, timestamp=datetime(2025, 8, 11, 17, 0, tzinfo=UTC))
    html = (await staff.get("/admin/")).text
    assert "No messages in these 30 days; the latest is from 2025-08-11." in html


async def test_transcript_shows_messages_in_order_by_role_with_metadata(staff: Any) -> None:
    session = await make_session()
    start = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
    await make_message(
        session=session,
        role=MessageRole.COACH,
        content="Third",
        timestamp=start + timedelta(minutes=2),
    )
    await make_message(session=session, role=MessageRole.USER, content="First", timestamp=start)
    await make_message(
        session=session,
        role=MessageRole.PARTNER,
        content="Second\nline two",
        timestamp=start + timedelta(minutes=1),
        metadata={"tokens": 42, "model": "claude-sonnet-4-5"},
    )
    html = (await staff.get(f"/admin/conversationsession/transcript/{session.pk}")).text
    assert re.findall(r'data-role="(\w+)"', html) == ["user", "partner", "coach"]
    assert html.index("First") < html.index("Second") < html.index("Third")
    assert "2026-01-02 10:01:00" in html and "Second\nline two" in html
    assert "&#34;tokens&#34;: 42" in html or '"tokens": 42' in html
    assert "claude-sonnet-4-5" in html


async def test_transcript_of_a_missing_session_is_404(staff: Any) -> None:
    assert (await staff.get("/admin/conversationsession/transcript/999999")).status_code == 404
    assert (await staff.get("/admin/conversationsession/transcript/abc")).status_code == 404


async def test_relation_links_both_ways(staff: Any) -> None:
    message = await make_message()
    session = await ConversationSession.get(pk=message.session_id)
    users = (await staff.get("/admin/user/list")).text
    assert f"/admin/conversationsession/list?user_id={session.user_id}" in users
    scenarios = (await staff.get("/admin/scenario/list")).text
    assert f"/admin/conversationsession/list?scenario_id={session.scenario_id}" in scenarios
    sessions = (await staff.get(f"/admin/conversationsession/list?user_id={session.user_id}")).text
    assert ids_in(sessions) == [session.pk]
    for link in (
        f"/admin/user/update/{session.user_id}",
        f"/admin/scenario/update/{session.scenario_id}",
        f"/admin/message/list?session_id={session.pk}",
        f"/admin/conversationsession/transcript/{session.pk}",
    ):
        assert link in sessions
    messages = (await staff.get(f"/admin/message/list?session_id={session.pk}")).text
    assert ids_in(messages) == [message.pk]
    assert f"/admin/conversationsession/update/{session.pk}" in messages
    edit_session = (await staff.get(f"/admin/conversationsession/update/{session.pk}")).text
    assert f"/admin/user/update/{session.user_id}" in edit_session
    assert f"/admin/message/list?session_id={session.pk}" in edit_session
    edit_user = (await staff.get(f"/admin/user/update/{session.user_id}")).text
    assert f"/admin/conversationsession/list?user_id={session.user_id}" in edit_user
    edit_message = (await staff.get(f"/admin/message/update/{message.pk}")).text
    assert (
        f"/admin/conversationsession/transcript/{session.pk}#message-{message.pk}" in edit_message
    )


async def test_search_users_by_email_or_username(staff: Any) -> None:
    alice = await make_user(email="alice.search@example.com", username="Alice")
    bob = await make_user(username="Bob Searchable")
    await make_user()
    assert ids_in((await staff.get("/admin/user/list?q=ALICE.SEARCH")).text) == [alice.pk]
    assert ids_in((await staff.get("/admin/user/list?q=searchable")).text) == [bob.pk]


async def test_search_scenarios_and_messages(staff: Any) -> None:
    scenario = await make_scenario(name="Negotiating rent", slug="negotiating-rent")
    await make_scenario()
    assert ids_in((await staff.get("/admin/scenario/list?q=rent")).text) == [scenario.pk]
    message = await make_message(content="I would like a raise")
    await make_message()
    assert ids_in((await staff.get("/admin/message/list?q=a%20RAISE")).text) == [message.pk]


async def test_filters(staff: Any) -> None:
    boss = staff.staff_user
    plain = await make_user()
    assert ids_in((await staff.get("/admin/user/list?is_staff=true")).text) == [boss.pk]
    assert ids_in((await staff.get("/admin/user/list?is_staff=false")).text) == [plain.pk]
    inactive = await make_scenario(is_active=False)
    assert ids_in((await staff.get("/admin/scenario/list?is_active=false")).text) == [inactive.pk]

    scenario = await make_scenario()
    old = await make_session(
        status=SessionStatus.COMPLETED, started_at=datetime(2026, 3, 1, 12, tzinfo=UTC)
    )
    new = await make_session(scenario=scenario, started_at=datetime(2026, 3, 5, 23, 59, tzinfo=UTC))
    assert ids_in((await staff.get("/admin/conversationsession/list?status=completed")).text) == [
        old.pk
    ]
    assert ids_in(
        (await staff.get(f"/admin/conversationsession/list?scenario_id={scenario.pk}")).text
    ) == [new.pk]
    by_date = "/admin/conversationsession/list?started_at__gte=2026-03-02&started_at__lt=2026-03-05"
    assert ids_in((await staff.get(by_date)).text) == [new.pk]  # the end day is included
    coach = await make_message(session=new, role=MessageRole.COACH)
    await make_message(session=new, role=MessageRole.USER)
    assert ids_in((await staff.get("/admin/message/list?role=coach")).text) == [coach.pk]


@pytest.mark.parametrize(
    "query",
    [
        "page_size=-5&page_num=0",
        "page_size=abc&page_num=x",
        "page_size=100000",
        f"page_num={10**30}&page_size=\uff15",
    ],
)
async def test_bad_pager_values_fall_back_to_the_defaults(staff: Any, query: str) -> None:
    await make_session()
    for resource in RESOURCES:
        response = await staff.get(f"/admin/{resource}/list?{query}")
        assert response.status_code == 200, (resource, query)


@pytest.mark.parametrize(
    ("query", "label"),
    [
        ("status=bogus", "Status"),
        ("scenario_id=x", "Scenario"),
        ("user_id=y", "User #"),
        ("user_id=99999999999", "User #"),
        ("user_id=%EF%BC%91", "User #"),  # a full-width 1
        ("started_at__gte=not-a-date", "Started from"),
        ("started_at__lt=2026-13-45", "to"),
    ],
)
async def test_a_filter_value_that_cannot_be_used_is_a_400_naming_the_filter(
    staff: Any, query: str, label: str
) -> None:
    await make_session()
    response = await staff.get(f"/admin/conversationsession/list?{query}")
    assert response.status_code == 400
    assert f"The filter \u201c{label}\u201d" in response.text


async def test_sorting_by_column(staff: Any) -> None:
    for name in ("b", "c", "a"):
        await make_user(email=f"{name}-sort@example.com")
    ascending = ids_in((await staff.get("/admin/user/list?sort=email&q=-sort@")).text)
    descending = ids_in((await staff.get("/admin/user/list?sort=-email&q=-sort@")).text)
    users = {u.pk: u.email for u in await User.filter(email__contains="-sort@")}
    assert [users[i][0] for i in ascending] == ["a", "b", "c"]
    assert descending == ascending[::-1]
    page = (await staff.get("/admin/user/list?sort=email")).text
    assert "sort=-email" in page  # the header link flips the order


def pager_link(html: str, rel: str) -> str | None:
    """The URL of a list's "first" / "prev" / "next" / "last" link, None when disabled."""
    found = re.search(rf'<a class="page-link" rel="{rel}" href="([^"]+)"', html)
    return unescape(found[1]) if found else None


async def test_pagination_with_page_size(staff: Any) -> None:
    for _ in range(7):
        await make_user()
    first = await staff.get("/admin/user/list?page_size=3&sort=id")
    second_url = pager_link(first.text, "next")
    assert second_url is not None and "page_size=3" in second_url and "sort=id" in second_url
    second = await staff.get(second_url)
    last_url = pager_link(second.text, "next")
    assert last_url is not None
    last = await staff.get(last_url)
    assert len(ids_in(first.text)) == 3 and len(ids_in(second.text)) == 3
    assert len(ids_in(last.text)) == 2  # 7 users + the staff member
    assert set(ids_in(first.text)).isdisjoint(ids_in(second.text))
    assert "2 rows shown of 8</p>" in last.text
    assert pager_link(last.text, "next") is None and pager_link(first.text, "prev") is None


async def test_unknown_resource_and_missing_rows_are_404_pages(staff: Any) -> None:
    for path in (
        "/admin/nothing/list",
        "/admin/aerich/list",
        "/admin/user/update/999999",
        "/admin/user/update/abc",
    ):
        response = await staff.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text and "<html" in response.text
