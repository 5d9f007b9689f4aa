"""The studio's message search: word-prefix semantics on the GIN index, a count that stops at
search.COUNT_LIMIT, stable pages, and hostile input answered clearly (issue 10)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from coach_db import Message
from coach_db.apps.studio import pages, search
from tests.factories import make_message, make_session
from tests.test_studio_pages import ids_in, pager_link

FULL_WIDTH = "\uff4c\uff49\uff53\uff54\uff45\uff4e"  # "listen" in full-width letters
# Each phrase is used many times; "glistening" and "unlisten" contain "listen" but no word of
# theirs starts with it: the old substring search found them, the word search does not.
PHRASES = [
    "I am listening to you",
    "Listen to me!",
    "glistening dew on the grass",
    "He LISTENED carefully to his uncle",
    "nothing to see here",
    "my co-worker listens, sometimes",
    f"{FULL_WIDTH} in full width",
    "listen-up, uncle Bob",
    "don't unlisten the café",
    "listen_carefully with an underscore",
]


def expected_matches(content: str, query: str) -> bool:
    """The documented semantics: every word of the query starts a word of the content,
    case-insensitively; words are runs of letters and digits."""
    have = [w.lower() for w in re.findall(r"[^\W_]+", content)]
    return all(any(h.startswith(w.lower()) for h in have) for w in re.findall(r"[^\W_]+", query))


async def many_messages(raw: asyncpg.Connection, rows: int) -> list[tuple[int, str]]:
    """`rows` messages cycling through PHRASES, in one raw INSERT; every fourth timestamp is
    shared with the next message, so pages must break ties by id. Returns (id, content) in the
    list's order (timestamp, id)."""
    session = await make_session()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    contents = [PHRASES[i % len(PHRASES)] for i in range(rows)]
    stamps = [start + timedelta(seconds=i - i % 4 // 3) for i in range(rows)]
    await raw.execute(
        "INSERT INTO message (session_id, role, content, timestamp)"
        " SELECT $1, 'user', c, t FROM unnest($2::text[], $3::timestamptz[]) AS x(c, t)",
        session.pk,
        contents,
        stamps,
    )
    ordered = await raw.fetch("SELECT id, content FROM message ORDER BY timestamp, id")
    return [(row["id"], row["content"]) for row in ordered]


@pytest.mark.parametrize("query", ["listen", "LISTEN uncle", "liste", "to", "café", FULL_WIDTH])
async def test_search_finds_exactly_the_messages_with_words_starting_with_each_word(
    raw: asyncpg.Connection, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both plans (ids from the GIN index; walking the list's order) find the same rows."""
    rows = await many_messages(raw, 60)
    wanted = [pk for pk, content in rows if expected_matches(content, query)]
    planned = await search.plan(query)
    found = await planned.apply(Message.all()).order_by("timestamp", "id")
    assert [m.pk for m in found] == wanted
    monkeypatch.setattr(search, "COMMON_MATCHES", 0)  # as for a word in 5% of 10M messages
    walked = await search.plan(query)
    assert "ILIKE" in walked.condition and "ILIKE" not in planned.condition  # the other plan
    found = await walked.apply(Message.all()).order_by("timestamp", "id")
    assert [m.pk for m in found] == wanted
    assert wanted  # each query finds something...
    if query == "listen":  # ...and not what a substring search found
        glistening = {pk for pk, content in rows if content.startswith("glistening")}
        assert glistening and glistening.isdisjoint(wanted)


async def test_search_pages_are_stable_and_the_count_stops_at_the_limit(
    raw: asyncpg.Connection, staff: Any
) -> None:
    rows = await many_messages(raw, 2000)
    wanted = [pk for pk, content in rows if expected_matches(content, "listen")]
    assert len(wanted) > search.COUNT_LIMIT  # more matches than the count goes to

    url = "/admin/message/list?q=listen&page_size=100"
    first = await staff.get(url)
    assert first.status_code == 200
    assert f"more than {search.COUNT_LIMIT:,}</p>" in first.text
    seen: list[int] = []
    next_url: str | None = url
    while next_url is not None:  # the keyset pages' "next" links (coach_db/apps/studio/pages.py)
        html = (await staff.get(next_url)).text
        seen += ids_in(html)
        next_url = pager_link(html, "next")
        assert len(seen) <= len(wanted)
    assert seen == wanted  # every match once, in (timestamp, id) order, across the pages
    last_page = (await staff.get(f"{url}&end=1")).text
    assert ids_in(last_page) == wanted[-100:]

    newest_first = (await staff.get("/admin/message/list?q=listen&sort=-timestamp")).text
    # Keyset pages read (timestamp, id) backwards: ties newest id first.
    newest = sorted(await timestamps(raw, wanted), key=lambda row: (row[1], row[0]), reverse=True)
    assert ids_in(newest_first) == [pk for pk, _ in newest[:20]]


async def timestamps(raw: asyncpg.Connection, ids: list[int]) -> list[tuple[int, datetime]]:
    found = await raw.fetch("SELECT id, timestamp FROM message WHERE id = ANY($1)", ids)
    return [(row["id"], row["timestamp"]) for row in found]


HOSTILE = [
    "&|!:*()",
    "listen:* & !uncle | (",
    "'",
    '"listen',
    "' OR 1=1 --",
    "\\",
    "$$listen$$",
    "<-> <2> !!",
    "(" * 5000,
    "a" * 10240,
    "word " * 2048,
    FULL_WIDTH + "\uff01",  # full-width "listen!"
    "   ",
    "🙂",
    "the a of",
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_searches_get_a_clear_answer_never_a_500(
    raw: asyncpg.Connection, staff: Any, query: str
) -> None:
    await many_messages(raw, 30)
    response = await staff.get("/admin/message/list", params={"q": query})
    assert response.status_code in (200, 400), response.text[:2000]
    if response.status_code == 400:
        assert "The filter \u201cSearch words\u201d" in response.text
    else:
        assert 'id="filter-q"' in response.text


async def test_a_search_says_what_it_matches_and_refuses_what_it_cannot_use(
    raw: asyncpg.Connection, staff: Any
) -> None:
    rows = await many_messages(raw, 30)
    page = (await staff.get("/admin/message/list")).text
    assert search.HINT in page  # the search box says it matches words by their start

    operators = (await staff.get("/admin/message/list", params={"q": "listen:* &"})).text
    plain = (await staff.get("/admin/message/list", params={"q": "listen"})).text
    assert (
        ids_in(operators)
        == ids_in(plain)
        == [pk for pk, content in rows if expected_matches(content, "listen")][:20]
    )  # operators are punctuation: ignored

    cases = {
        "&|!:*()": "type a word",
        "x\x00y": "NUL",
        "a" * 10240: f"at most {search.MAX_WORD_CHARS} letters",
        "word " * 2048: f"at most {search.MAX_WORDS} words",
    }
    for query, reason in cases.items():
        response = await staff.get("/admin/message/list", params={"q": query})
        assert response.status_code == 400 and reason in response.text, query[:20]


async def test_a_rare_word_search_reads_its_page_by_its_ids(
    staff: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare word's search is a list of ids (at most search.COMMON_MATCHES). PostgreSQL
    expects them spread evenly over the messages and read the page in the list's order: when
    none lay beyond a cursor, the check for a next page walked the timestamp index to its end
    (`q=other&role=partner&before=…`: 5,355,968 messages, 1.8 s at 10M). Such a page is now
    read in a transaction that allows bitmap scans only (search.BITMAP_ONLY): by the ids, 25 ms.
    Other lists keep the planner's choice."""
    settings: list[str] = []
    read_page = pages.read_page

    async def spy(request: Any, model: Any, qs: Any, *args: Any, **kwargs: Any) -> Any:
        found = await qs._choose_db().execute_query_dict(
            "SELECT current_setting('enable_indexscan') AS s"
        )
        settings.append(found[0]["s"])
        return await read_page(request, model, qs, *args, **kwargs)

    monkeypatch.setattr(pages, "read_page", spy)
    await make_message(content="an uncommon zyzzyva here")
    found = await staff.get("/admin/message/list?q=zyzzyva&sort=-timestamp")
    assert found.status_code == 200 and "zyzzyva" in found.text
    assert (await staff.get("/admin/message/list?sort=-timestamp")).status_code == 200
    assert settings == ["off", "on"]
