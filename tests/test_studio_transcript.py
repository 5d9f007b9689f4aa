"""The studio's transcript page: keyset pages of MAX_TRANSCRIPT_PAGE messages, earlier/later."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from coach_db.limits import MAX_TRANSCRIPT_PAGE
from tests.factories import make_message, make_session


def shown(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="message-(\d+)"', page)]


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html_lib.unescape(found.group(1)) if found else None


async def test_a_long_transcript_is_paged_and_every_message_is_reachable_once(
    staff: Any, raw: asyncpg.Connection
) -> None:
    """2 pages and a bit; runs of equal timestamps, so the cursor must order ties by id."""
    session = await make_session()
    count = 2 * MAX_TRANSCRIPT_PAGE + 37
    t0 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    await raw.copy_records_to_table(
        "message",
        records=[
            (session.pk, "user", f"m{i}", t0 + timedelta(seconds=i // 7)) for i in range(count)
        ],
        columns=["session_id", "role", "content", "timestamp"],
    )
    expected = [r["id"] for r in await raw.fetch("SELECT id FROM message ORDER BY timestamp, id")]
    url = f"/admin/conversationsession/transcript/{session.pk}"

    forward: list[list[int]] = []
    page = (await staff.get(url)).text
    assert link(page, "prev") is None
    while True:
        forward.append(shown(page))
        assert f"of {count} messages" in page
        next_link = link(page, "next")
        if next_link is None:
            break
        response = await staff.get(url + next_link)
        assert response.status_code == 200
        page = response.text
    assert [len(p) for p in forward] == [MAX_TRANSCRIPT_PAGE, MAX_TRANSCRIPT_PAGE, 37]
    assert [i for p in forward for i in p] == expected

    backward: list[list[int]] = []
    page = (await staff.get(url + "?end=1")).text
    while True:
        backward.append(shown(page))
        prev_link = link(page, "prev")
        if prev_link is None:
            break
        page = (await staff.get(url + prev_link)).text
    assert [len(p) for p in backward] == [MAX_TRANSCRIPT_PAGE, MAX_TRANSCRIPT_PAGE, 37]
    assert [i for p in reversed(backward) for i in p] == expected


async def test_a_bad_transcript_cursor_is_404(staff: Any) -> None:
    message, elsewhere = await make_message(), await make_message()
    url = f"/admin/conversationsession/transcript/{message.session_id}"
    assert (await staff.get(f"{url}?after={message.pk}")).status_code == 200
    for cursor in ("abc", "-1", "\uff11", "1e30", "99999999999999999999", str(elsewhere.pk)):
        for direction in ("after", "before"):
            response = await staff.get(url, params={direction: cursor})
            assert response.status_code == 404, (direction, cursor)
