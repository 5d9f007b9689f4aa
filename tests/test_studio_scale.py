"""Studio pages at production size: no form lists a whole table, a list page runs a fixed
number of statements, and counts stop at a cap (issue 10)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from admin.widgets import FOREIGN_KEY_SUGGESTIONS
from coach_db import Message
from tests.factories import make_message, make_scenario, make_session, make_user
from tests.studio import client_for, make_staff, post, sign_in, studio_with
from tests.test_studio_pages import ids_in


def suggestions(html: str, name: str) -> list[tuple[int, bool]]:
    """(row number, selected) of each suggestion of a foreign-key input."""
    datalist = re.search(rf'<datalist id="options-{name}">(.*?)</datalist>', html, re.S)
    assert datalist is not None, html[:2000]
    return [
        (int(pk), bool(selected))
        for pk, selected in re.findall(r'<option value="(\d+)"( selected)?>', datalist[1])
    ]


async def test_a_foreign_key_input_suggests_a_bounded_number_of_rows(staff: Any) -> None:
    user, scenario = await make_user(), await make_scenario()
    oldest = await make_session(user=user, scenario=scenario)
    message = await make_message(session=oldest)
    for _ in range(FOREIGN_KEY_SUGGESTIONS + 5):
        await make_session(user=user, scenario=scenario)

    html = (await staff.get(f"/admin/message/update/{message.pk}")).text
    listed = suggestions(html, "session_id")
    assert len(listed) <= FOREIGN_KEY_SUGGESTIONS + 1
    assert (oldest.pk, True) in listed  # the current row, older than every suggestion
    assert f'name="session_id"\n           value="{oldest.pk}"' in html
    assert len(suggestions((await staff.get("/admin/message/create")).text, "session_id")) == (
        FOREIGN_KEY_SUGGESTIONS
    )


async def test_a_typed_row_number_is_saved_and_an_unknown_one_is_a_form_error(
    staff: Any,
) -> None:
    first = await make_session()
    message = await make_message(session=first)
    for _ in range(FOREIGN_KEY_SUGGESTIONS + 1):
        await make_session()
    other = await make_session()
    form = {
        "session_id": str(first.pk),
        "role": "coach",
        "content": "moved",
        "timestamp": message.timestamp.strftime("%Y-%m-%dT%H:%M:%S"),
        "audio_url": "",
        "metadata": "{}",
        "save": "",
    }
    refused = await post(
        staff, f"/admin/message/update/{message.pk}", {**form, "session_id": "999999999"}
    )
    assert refused.status_code == 422
    assert "there is no row #999999999" in refused.text
    assert (await Message.get(pk=message.pk)).session_id == first.pk  # nothing changed

    saved = await post(
        staff, f"/admin/message/update/{message.pk}", {**form, "session_id": str(other.pk)}
    )
    assert saved.status_code == 303, saved.text[:2000]
    assert (await Message.get(pk=message.pk)).session_id == other.pk


async def statements_of(client: Any, url: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    """The SQL statements the studio ran to answer one GET (Tortoise logs each one)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        response = await client.get(url)
    assert response.status_code == 200, response.text[:2000]
    return [r.getMessage() for r in caplog.records if r.name == "tortoise.db_client"]


@pytest.mark.parametrize("resource", ["conversationsession", "message", "user", "scenario"])
async def test_a_list_page_runs_as_many_statements_for_20_rows_as_for_1(
    staff: Any, caplog: pytest.LogCaptureFixture, resource: str
) -> None:
    user, scenario = await make_user(), await make_scenario()
    sessions = []
    for i in range(20):
        # Different users and scenarios per row: a query per row would show in the count.
        session = await make_session(
            user=user if i == 0 else await make_user(),
            scenario=scenario if i == 0 else await make_scenario(),
        )
        await make_message(session=sessions[-1] if sessions else session)
        await make_message(session=session)
        sessions.append(session)
    narrow = {
        "conversationsession": f"user_id={user.pk}",
        "message": f"session_id={sessions[0].pk}",
    }
    single = await statements_of(
        staff, f"/admin/{resource}/list?page_size=1&{narrow.get(resource, '')}", caplog
    )
    many = await statements_of(staff, f"/admin/{resource}/list?page_size=20", caplog)
    assert len(single) == len(many), "\n".join(many)
    page = (await staff.get(f"/admin/{resource}/list?page_size=20")).text
    assert page.count('data-id="') == 20  # the 20 rows are all there


def next_is_enabled(html: str) -> bool:
    """Whether a list page's "Next" link can be followed."""
    item = re.search(r'<li class="page-item ?(\w*)">\s*<a class="page-link" [^>]*>Next', html)
    assert item is not None
    return item[1] != "disabled"


async def test_a_list_counts_up_to_the_cap_and_every_page_stays_reachable(
    studio_settings: Any,
) -> None:
    session = await make_session()
    for i in range(13):
        await make_message(session=session, content=f"turn {i}")
    few = await make_session()
    for _ in range(4):
        await make_message(session=few)
    order = await Message.filter(session_id=session.pk).order_by("timestamp", "id")
    expected = [m.pk for m in order]
    user = await make_staff()
    async with (
        studio_with(studio_settings, studio_exact_count_limit=5) as app,
        client_for(app) as client,
    ):
        assert (await sign_in(client, user.email)).status_code == 303
        url = f"/admin/message/list?session_id={session.pk}&page_size=5&page_num="

        first = (await client.get(f"{url}1")).text
        assert "more than 5 rows" in first and "of more than 5</p>" in first
        assert ids_in(first) == expected[:5]
        assert next_is_enabled(first)

        second = (await client.get(f"{url}2")).text
        assert "more than 10 rows" in second and ids_in(second) == expected[5:10]
        assert next_is_enabled(second)

        last = (await client.get(f"{url}3")).text  # counted through its page: exact
        assert "13 rows" in last and "Showing 11 to 13 of 13</p>" in last
        assert ids_in(last) == expected[10:]
        assert not next_is_enabled(last)

        below = (await client.get(f"/admin/message/list?session_id={few.pk}")).text
        assert "4 rows" in below and "Showing 1 to 4 of 4</p>" in below
