"""The studio's audit trail (issue 13): changes and views recorded, History, the audit list,
read-only, and erasure from a user's page."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
from tortoise.transactions import in_transaction

from coach_db import Message, MessageRole, User, add_message
from coach_db.apps.studio import audit
from coach_db.models import AuditEvent, ErasureReceipt
from tests.factories import make_message, make_session, make_user
from tests.studio import csrf, delete, post


async def events(**filters: Any) -> list[AuditEvent]:
    return await AuditEvent.filter(**filters).order_by("id")


async def test_studio_creates_updates_and_deletes_are_recorded_without_passwords(
    staff: Any,
) -> None:
    created = await post(
        staff,
        "/admin/user/create",
        {"email": "Pat@Example.com", "username": "Pat", "password": "a long password"},
    )
    assert created.status_code == 303
    user = await User.get(email="pat@example.com")
    await post(
        staff,
        f"/admin/user/update/{user.pk}",
        {"email": user.email, "username": "Patricia", "password": "another password"},
    )
    assert (await delete(staff, f"/admin/user/delete/{user.pk}")).status_code == 200
    trail = await events(model="user", row_id=user.pk)
    assert [e.action for e in trail] == ["create", "update", "delete"]
    me = staff.staff_user
    assert {(e.actor_id, e.actor_email, e.subject_id) for e in trail} == {
        (me.pk, me.email, user.pk)
    }
    create, update, removed = (e.changes or {} for e in trail)
    assert create["email"] == [None, "pat@example.com"] and create["password"] == "changed"
    assert update == {"username": ["Pat", "Patricia"], "password": "changed"}
    assert removed["username"] == ["Patricia", None] and removed["password"] == "deleted"
    text = json.dumps([e.changes for e in trail])
    assert "argon2" not in text and "password_hash" not in text and "long password" not in text


async def test_a_refused_or_stale_save_records_nothing(staff: Any) -> None:
    taken, user = await make_user(), await make_user()
    refused = await post(
        staff, f"/admin/user/update/{user.pk}", {"email": taken.email, "username": "x"}
    )
    assert refused.status_code == 422
    stale = await post(
        staff,
        f"/admin/user/update/{user.pk}",
        {"email": user.email, "username": "y", "row_version": "1"},
    )
    assert stale.status_code == 409
    assert await events(model="user") == []


async def test_message_deletes_and_edits_are_recorded_about_the_sessions_owner(
    staff: Any,
) -> None:
    message = await make_message(content="first words")
    session = await message.session
    await post(
        staff,
        f"/admin/message/update/{message.pk}",
        {"session_id": session.pk, "role": "user", "content": "second words", "metadata": "{}"},
    )
    await delete(staff, f"/admin/message/delete/{message.pk}")
    trail = await events(model="message", row_id=message.pk)
    assert [e.action for e in trail] == ["view", "update", "delete"]  # the form was opened
    assert {e.subject_id for e in trail} == {session.user_id}
    assert trail[1].changes == {"content": ["first words", "second words"]}
    assert (trail[2].changes or {})["content"] == ["second words", None]


async def test_deleting_a_session_records_how_many_messages_went_with_it(staff: Any) -> None:
    """Issue 18: the cascade is in the session's delete row, written in the same transaction."""
    session, empty = await make_session(), await make_session()
    for i in range(3):
        await add_message(session, MessageRole.USER, f"turn {i}")
    user = await session.user
    gone = await delete(staff, f"/admin/conversationsession/delete?ids={session.pk},{empty.pk}")
    assert gone.status_code == 200, gone.text
    rows = await events(model="conversationsession", action="delete")
    assert {e.row_id: (e.changes or {})["messages"] for e in rows} == {
        session.pk: [3, 0],
        empty.pk: [0, 0],
    }
    assert (await delete(staff, f"/admin/user/delete/{user.pk}")).status_code == 200
    [removed] = await events(model="user", action="delete")
    assert (removed.changes or {})["sessions"] == [0, 0]  # its one session had gone already


async def test_reading_a_transcript_is_recorded_as_who_read_whose_conversation(
    staff: Any,
) -> None:
    session = await make_session()
    await add_message(session, MessageRole.USER, "private")
    assert (
        await staff.get(f"/admin/conversationsession/transcript/{session.pk}")
    ).status_code == 200
    [view] = await events(action="view")
    assert (view.model, view.row_id, view.subject_id) == (
        "conversationsession",
        session.pk,
        session.user_id,
    )
    assert view.actor_id == staff.staff_user.pk


async def test_every_page_showing_a_conversations_content_records_who_read_it(
    staff: Any,
) -> None:
    """Issue 18: the message list (filtered to a session, searched, or not), a message's
    History and the audit trail showing its edits write a `view` about the person whose
    conversation it is; pages without conversation content write none."""
    session, other = await make_session(), await make_session()
    for i in range(3):
        await add_message(session, MessageRole.USER, f"secret words {i}")
    await add_message(other, MessageRole.USER, "another secret")
    me = staff.staff_user

    async def views_after(url: str) -> list[AuditEvent]:
        before = await AuditEvent.filter(action="view").count()
        assert (await staff.get(url)).status_code == 200, url
        found = await events(action="view")
        assert {(e.actor_id, e.actor_email) for e in found[before:]} <= {(me.pk, me.email)}
        return found[before:]

    listed = await views_after(f"/admin/message/list?session_id={session.pk}&page_size=200")
    assert [(e.model, e.row_id, e.subject_id) for e in listed] == [
        ("conversationsession", session.pk, session.user_id)
    ]
    assert (listed[0].changes or {})["messages"] == 3
    everything = await views_after("/admin/message/list")
    assert {(e.row_id, e.subject_id) for e in everything} == {
        (session.pk, session.user_id),
        (other.pk, other.user_id),
    }
    searched = await views_after("/admin/message/list?q=another")
    assert [(e.row_id, e.subject_id) for e in searched] == [(other.pk, other.user_id)]
    message = await Message.filter(session_id=session.pk).first()
    assert message is not None
    await post(
        staff,
        f"/admin/message/update/{message.pk}",
        {"session_id": session.pk, "role": "user", "content": "edited", "metadata": "{}"},
    )
    for url in (f"/admin/message/history/{message.pk}", "/admin/audit?model=message"):
        [read] = await views_after(url)
        assert (read.model, read.row_id, read.subject_id) == (
            "message",
            message.pk,
            session.user_id,
        )
    for url in ("/admin/conversationsession/list", "/admin/user/list", "/admin/"):
        assert await views_after(url) == [], url


async def test_history_pages_a_rows_events_newest_first_and_reaches_every_one(
    staff: Any, raw: asyncpg.Connection
) -> None:
    user = await make_user()
    await raw.executemany(
        "INSERT INTO audit_event (action, model, row_id, changes)"
        " VALUES ('update', 'user', $1, $2)",
        [(user.pk, json.dumps({"username": [str(i), str(i + 1)]})) for i in range(120)],
    )
    await raw.execute(
        "INSERT INTO audit_event (action, model, row_id) VALUES ('view', 'user', 999)"
    )
    form = await staff.get(f"/admin/user/update/{user.pk}")
    assert f'/admin/user/history/{user.pk}"' in form.text
    seen: list[int] = []
    url = f"/admin/user/history/{user.pk}"
    while url:
        page = await staff.get(url)
        assert page.status_code == 200
        ids = [int(i) for i in re.findall(r'<tr class="audit-event">\s*<td>(\d+)</td>', page.text)]
        assert 0 < len(ids) <= 50
        seen += ids
        older = re.search(r'href="\?(before=\d+)"', page.text)
        url = f"/admin/user/history/{user.pk}?{older[1]}" if older else ""
    expected = [
        r["id"]
        for r in await raw.fetch(
            "SELECT id FROM audit_event WHERE row_id = $1 ORDER BY id DESC", user.pk
        )
    ]
    assert seen == expected and len(seen) == 120
    gone = await staff.get("/admin/user/history/999")  # a deleted row keeps its history
    assert gone.status_code == 200 and "(deleted)" in gone.text


async def test_the_audit_list_filters_and_refuses_bad_filters_with_a_400(
    staff: Any, raw: asyncpg.Connection
) -> None:
    await raw.execute(
        "INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, created_at) VALUES"
        " (1, 'a@example.com', 'update', 'user', 5, '2026-01-02'),"
        " (2, 'b@example.com', 'delete', 'message', 5, '2026-02-03'),"
        " (1, 'a@example.com', 'view', 'conversationsession', 7, '2026-03-04')"
    )

    async def shown(query: str) -> list[str]:
        page = await staff.get(f"/admin/audit?{query}")
        assert page.status_code == 200, page.text
        return re.findall(r'<tr class="audit-event">\s*<td>(\d+)</td>', page.text)

    assert await shown("") == ["3", "2", "1"]
    assert await shown("actor=a@example.com") == ["3", "1"]
    assert await shown("actor=2") == ["2"]
    assert await shown("model=message") == ["2"]
    assert await shown("row=5") == ["2", "1"]
    assert await shown("action=view") == ["3"]
    assert await shown("since=2026-02-01&until=2026-02-03") == ["2"]
    assert await shown("actor=a@example.com&row=5&action=update") == ["1"]
    for bad in (
        "model=aerich",
        "row=x",
        "action=drop",
        "since=2026-13-45",
        "before=-1",
        "actor=%00",
    ):
        assert (await staff.get(f"/admin/audit?{bad}")).status_code == 400, bad


async def test_the_audit_list_finds_an_actors_e_mail_through_its_index() -> None:
    """An e-mail in the audit list's actor filter was compared to the column as stored, which
    no index serves: an e-mail nobody has read the whole trail (87 ms at 2M events, growing
    with every audited view). Compared lower-cased, as migration 12's index on
    lower(actor_email) is built, it is found through that index (sequential scans priced out
    here: without the index there is no other way than a scan or a walk of the whole trail)."""
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL enable_seqscan = off")
        query = audit.events_of({}, None, "Nobody@Example.com").limit(51).using_db(conn)
        plan = json.dumps(await query.explain(), default=str)
    assert "audit_event_actor_email_lower" in plan, plan
    assert "Seq Scan" not in plan


async def test_the_audit_list_of_a_model_reads_its_events_newest_first_from_an_index(
    raw: asyncpg.Connection,
) -> None:
    """The audit list filtered by a model (`model=scenario`) is its events, newest first. With
    no index in that order PostgreSQL walked the primary key back from the newest event past
    every other model's (49,950 events for 51 rows at 2M; all of the trail for a model last
    changed long ago) or sorted all of the model's events. Migration 13's (model, id) reads the
    page in order. The same skew here: 20,000 message events after 20 scenario events."""
    await raw.execute(
        "INSERT INTO audit_event (action, model, row_id, created_at)"
        " SELECT 'view', CASE WHEN g <= 20 THEN 'scenario' ELSE 'message' END, g,"
        "        timestamptz '2026-01-01' + g * interval '1 second'"
        "   FROM generate_series(1, 20020) AS g"
    )
    await raw.execute("ANALYZE audit_event")
    plan = json.dumps(
        await audit.events_of({"model": "scenario"}, None).limit(51).explain(), default=str
    )
    assert "audit_event_model_id" in plan, plan


async def test_the_audit_list_of_a_row_id_reads_its_events_newest_first_from_an_index(
    raw: asyncpg.Connection,
) -> None:
    """The audit list filtered by a row id alone (`row=7`, whatever the model) is that row's
    events, newest first. The indexes holding row_id lead with the model, which PostgreSQL 15
    cannot skip, so it walked the primary key back from the newest event, testing every event
    of the trail for a row with few (23 ms at 82,000 events, growing with the trail).
    Migration 15's (row_id, id) reads the page in order. Here row 7's three events are the
    oldest of 20,000."""
    await raw.execute(
        "INSERT INTO audit_event (action, model, row_id, created_at)"
        " SELECT 'view', CASE WHEN g % 2 = 0 THEN 'scenario' ELSE 'message' END,"
        "        CASE WHEN g <= 3 THEN 7 ELSE 100 + g END,"
        "        timestamptz '2026-01-01' + g * interval '1 second'"
        "   FROM generate_series(1, 20000) AS g"
    )
    await raw.execute("ANALYZE audit_event")
    query = audit.events_of({"row_id": 7}, None).limit(51)
    plan = json.dumps(await query.explain(), default=str)
    assert "audit_event_row_id" in plan, plan
    assert [e.row_id for e in await query] == [7, 7, 7]


async def test_the_audit_list_within_dates_pages_by_time_from_the_end_of_the_dates(
    staff: Any, raw: asyncpg.Connection
) -> None:
    """Filtered by dates, the audit list is newest first by (created_at, id), read from the
    end of the dates: in id order `until` a day long ago walked the primary key back past
    every later event (220 ms at 2M). The same skew here, 1,600 events before the day and
    18,400 after: the planner's own plan reads the created_at index and sorts nothing. And the
    "Older" links reach every event of the dates once, in that order, ties on the time broken
    by id."""
    await raw.execute(
        "INSERT INTO audit_event (action, model, row_id, created_at)"
        " SELECT 'view', 'message', g, timestamptz '2026-01-01' + (g / 2) * interval '1 minute'"
        "   FROM generate_series(1, 20000) AS g"
    )
    await raw.execute("ANALYZE audit_event")
    until = datetime(2026, 1, 1, 13, 20, tzinfo=UTC)  # 1,600 events before it
    query = audit.events_of({"created_at__lt": until}, None).limit(51)
    plan = json.dumps(await query.explain(), default=str)
    assert "idx_audit_event_created_5aa5b8" in plan, plan
    assert '"Node Type": "Sort"' not in plan, plan
    # Paging a window of the dates (since and until are days: two days of 120 events).
    await raw.execute(
        "INSERT INTO audit_event (action, model, row_id, created_at)"
        " SELECT 'view', 'user', g, timestamptz '2026-05-01' + (g / 3) * interval '20 minutes'"
        "   FROM generate_series(1, 120) AS g"
    )
    seen: list[int] = []
    url = "/admin/audit?since=2026-05-01&until=2026-05-02"
    while url:
        page = await staff.get(url)
        assert page.status_code == 200, page.text
        ids = [int(i) for i in re.findall(r'<tr class="audit-event">\s*<td>(\d+)</td>', page.text)]
        assert 0 < len(ids) <= 50
        seen += ids
        older = re.search(r'href="\?([^"]*before=\d+)"', page.text)
        url = "/admin/audit?" + html.unescape(older[1]) if older else ""
    expected = [
        r["id"]
        for r in await raw.fetch(
            "SELECT id FROM audit_event WHERE created_at >= '2026-05-01' AND created_at <"
            " '2026-05-03' ORDER BY created_at DESC, id DESC"
        )
    ]
    assert seen == expected and len(seen) == 120


async def test_audit_rows_have_no_edit_or_delete_route(staff: Any, raw: asyncpg.Connection) -> None:
    event = await raw.fetchval(
        "INSERT INTO audit_event (action, model, row_id) VALUES ('view', 'user', 1) RETURNING id"
    )
    for method, url in (
        ("GET", "/admin/auditevent/list"),
        ("GET", f"/admin/auditevent/update/{event}"),
        ("POST", f"/admin/auditevent/update/{event}"),
        ("DELETE", f"/admin/auditevent/delete/{event}"),
        ("DELETE", f"/admin/auditevent/delete?ids={event}"),
        ("POST", "/admin/audit"),
        ("DELETE", "/admin/audit"),
    ):
        # A valid token: the request must get past the CSRF check to the routes (a refusal
        # there, 403, would prove nothing about them).
        headers = {"X-CSRF-Token": await csrf(staff)}
        response = await staff.request(method, url, headers=headers)
        assert response.status_code in {404, 405}, (method, url, response.status_code)
    assert await raw.fetchval("SELECT count(*) FROM audit_event") == 1


async def test_erasing_a_person_from_the_studio_asks_first_and_leaves_a_receipt(
    staff: Any, raw: asyncpg.Connection
) -> None:
    session = await make_session()
    await add_message(session, MessageRole.USER, "something personal")
    user = await User.get(id=session.user_id)
    await staff.get(f"/admin/conversationsession/transcript/{session.pk}")  # audited: a view
    form = await staff.get(f"/admin/user/update/{user.pk}")
    assert f"/admin/user/erase/{user.pk}" in form.text
    confirm = await staff.get(f"/admin/user/erase/{user.pk}")
    assert confirm.status_code == 200 and "messages" in confirm.text
    refused = await post(staff, f"/admin/user/erase/{user.pk}", {"confirm": "someone else"})
    assert refused.status_code == 400 and await User.exists(id=user.pk)
    done = await post(staff, f"/admin/user/erase/{user.pk}", {"confirm": user.email})
    assert done.status_code == 303
    assert not await User.exists(id=user.pk)
    [receipt] = await ErasureReceipt.all()
    assert receipt.erased_by == f"studio: staff #{staff.staff_user.pk}"
    assert receipt.counts == {"user": 1, "sessions": 1, "messages": 1, "audit_events_redacted": 1}
    erase = await AuditEvent.get(action="erase")
    assert erase.actor_id == staff.staff_user.pk and erase.row_id == user.pk
    assert erase.changes == {"erasure_receipt": [None, receipt.pk]}
    assert (
        await raw.fetchval(
            "SELECT count(*) FROM audit_event WHERE subject_id = $1 OR changes::text LIKE $2",
            user.pk,
            f"%{user.email}%",
        )
        == 0
    )
    missing = await post(staff, f"/admin/user/erase/{user.pk}", {"confirm": user.email})
    assert missing.status_code == 404


async def test_a_change_whose_audit_row_cannot_be_written_is_not_saved(
    staff: Any, raw: asyncpg.Connection
) -> None:
    """The audit row is written in the transaction of the change: no trail, no change."""
    user = await make_user(username="Before")
    await raw.execute(
        "ALTER TABLE audit_event ADD CONSTRAINT test_no_user_rows CHECK (model <> 'user')"
    )
    try:
        refused = await post(
            staff, f"/admin/user/update/{user.pk}", {"email": user.email, "username": "After"}
        )
        deleted = await delete(staff, f"/admin/user/delete/{user.pk}")
    finally:
        await raw.execute("ALTER TABLE audit_event DROP CONSTRAINT test_no_user_rows")
    assert refused.status_code == 422
    # The refusal names the constraint that refused it, not rows pointing at the user.
    assert deleted.status_code == 409
    assert deleted.json() == {
        "error": "Not deleted: the database refused the change (test_no_user_rows). "
        "Nothing was deleted."
    }
    await user.refresh_from_db()
    assert user.username == "Before"


async def test_an_admin_erasing_their_own_account_leaves_a_pseudonym_not_their_e_mail(
    staff: Any, raw: asyncpg.Connection, database_url: str
) -> None:
    """Issue 18: an erased actor stays `actor_id` #id (a user id nobody has any more) in the
    trail and `studio: staff #id` in the receipt; their e-mail is nowhere. What they did to
    others stays readable."""
    from coach_db.tools import audit_chain

    me = staff.staff_user
    other = await make_user(username="Before")
    saved = await post(
        staff, f"/admin/user/update/{other.pk}", {"email": other.email, "username": "After"}
    )
    assert saved.status_code == 303
    done = await post(staff, f"/admin/user/erase/{me.pk}", {"confirm": me.email})
    assert done.status_code == 303
    trail = await raw.fetch(
        "SELECT action, row_id, actor_id, actor_email, changes::text FROM audit_event ORDER BY id"
    )
    assert [(r["action"], r["row_id"], r["actor_id"], r["actor_email"]) for r in trail] == [
        ("update", other.pk, me.pk, None),
        ("erase", me.pk, me.pk, None),
    ]
    assert json.loads(trail[0]["changes"]) == {"username": ["Before", "After"]}
    assert await raw.fetchval("SELECT erased_by FROM erasure_receipt") == f"studio: staff #{me.pk}"
    for table in ("audit_event", "erasure_receipt"):
        rows = await raw.fetchval(
            f"SELECT count(*) FROM {table} t WHERE strpos(lower(t::text), $1) > 0", me.email
        )
        assert rows == 0, table
    report = await audit_chain.verify(database_url)
    assert report.problem is None and report.redacted_fields == 1  # the update row's e-mail
