"""The studio's message search: words by their beginning, on the GIN index of migration 5."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from tortoise import connections
from tortoise.expressions import RawSQL
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coach_db.apps.studio import params, widgets

# What a search may hold: more words narrow it (all must match) but cost a GIN lookup each.
MAX_WORDS = 8
MAX_WORD_CHARS = 100
# A search counts its matches up to this many ("more than 1,000"): beyond it, a count costs a
# scan of every match while a page costs 20 rows.
COUNT_LIMIT = 1000
# Runs of letters and digits (any script); everything else separates words, as PostgreSQL's
# text-search parser does for the messages themselves.
_WORD = re.compile(r"[^\W_]+")
HINT = "whole words or their start: listen finds listen, listens, listening"


def words(text: str) -> list[str]:
    """The words of a search box value, or params.BadValue saying why there are none to use."""
    found = _WORD.findall(params.parse_filter_text(text))
    if not found:
        raise params.BadValue("type a word (letters or digits); punctuation is ignored")
    if len(found) > MAX_WORDS:
        raise params.BadValue(f"at most {MAX_WORDS} words")
    if any(len(word) > MAX_WORD_CHARS for word in found):
        raise params.BadValue(f"words of at most {MAX_WORD_CHARS} letters")
    return found


def tsquery(found: list[str]) -> str:
    """Every word as a prefix, all required: `listen:* & uncle:*` (letters and digits need no
    quotes in a tsquery)."""
    return " & ".join(f"{word}:*" for word in found)


# A word the planner expects in fewer than this many messages is looked up in the GIN index:
# the ids of every message with all the words (at most this many, as the rarest word bounds
# them; 10,000 ids took 340 ms at 10M), and the page is those rows with the list's other
# filters, sorted. A search whose words
# are all commoner than this walks the list's order instead, testing each message, and never
# further than WALK_WINDOW messages per page: a walk that had to find 20 matches walked all
# 10M messages when none matched ("think" with role coach: 12 s), and GIN intersections of
# two common words read both posting lists (300 ms for "uncle listen" at 10M). Word
# frequencies come from ANALYZE samples.
COMMON_MATCHES = 3_000
# How many messages one page of a walked search looks through at most, from the first one
# the other filters allow: 100-400 ms at 10M for 20,000 on the loaded benchmark machine (more
# when many messages hold every substring and have their words computed). The page says so,
# and "Next" goes on.
WALK_WINDOW = 10_000
# Plans that read rows through bitmaps only: the GIN index for the words, the primary key for
# a page of a search's ids (see by_ids), never a walk of an index in the list's order.
BITMAP_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off"
# A lexeme no message has (letters and digits only, as a search word).
UNTRACKED = "qxzqxzqxzqxzqxzq"


@dataclass(frozen=True)
class Found:
    """A planned message search: the condition to filter on, and whether pages walk the
    list's order in windows of WALK_WINDOW messages (common words) or not (a list of ids)."""

    condition: str
    walk: bool

    def apply(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        return qs.annotate(content_search=RawSQL(f"({self.condition})")).filter(content_search=True)


def _matching(found: list[str]) -> str:
    return f"to_tsvector('simple', \"content\") @@ to_tsquery('simple', '{tsquery(found)}')"


async def plan(text: str) -> Found:
    """The messages whose content has every word of `text` (ignoring case), each as the start
    of one of its words, found through the GIN index message_content_words (migration 5).

    The words go into the SQL as literals, not parameters, so that the planner sees them
    (asyncpg prepares statements, and a generic plan is blind to them). Safe: a word is
    letters and digits only, so no quote, backslash, NUL or LIKE wildcard reaches the SQL."""
    found = words(text)
    assert all(_WORD.fullmatch(word) for word in found)
    db = connections.get("default")
    expected = {}
    # Each word on its own (the planner multiplies them as if independent), and a word no
    # message has: a word ANALYZE did not find among the commonest gets that same default
    # estimate (5,320 at 10M, for an absent word as for one in 0.02% of messages), which
    # says only that it is rarer than those: look it up in the index.
    for word in [*found, UNTRACKED]:
        explained = await db.execute_query_dict(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM message WHERE {_matching([word])}"
        )
        expected[word] = json.loads(explained[0]["QUERY PLAN"])[0]["Plan"]["Plan Rows"]
    untracked = expected.pop(UNTRACKED)
    if min(expected.values()) < COMMON_MATCHES or min(expected.values()) <= untracked:
        # Through the GIN index, always: on a LIMIT below its estimate the planner would rather
        # scan the table until it has enough (minutes for two words that seldom meet).
        async with in_transaction("default") as conn:  # the primary (replicas)
            await conn.execute_script(
                f"{BITMAP_ONLY};"
                # an exact bitmap: a lossy one has every row of its pages re-tested (~35 us each)
                " SET LOCAL work_mem = '64MB'"
            )
            rows = await conn.execute_query_dict(
                f"SELECT id FROM message WHERE {_matching(found)} LIMIT {COMMON_MATCHES + 1}"
            )
        if len(rows) <= COMMON_MATCHES:
            ids = ",".join(str(int(row["id"])) for row in rows)
            return Found(f"\"id\" = ANY('{{{ids}}}'::bigint[])", walk=False)
    # Common words: walk the list's order. A substring test per word (about 1 us a row) lets
    # most rows pass without computing their words (about 35 us); message_has_words
    # (migration 5) is the word test, without the GIN index (whose list would hold 5% of the
    # table) and without parallel workers (which read far ahead of 20 rows).
    # (The rarest word's test first: PostgreSQL stops at the first that fails.)
    rarest_first = sorted(found, key=lambda word: expected[word])
    likes = " AND ".join(f"\"content\" ILIKE '%{word}%'" for word in rarest_first)
    walked = f"message_has_words(\"content\", to_tsquery('simple', '{tsquery(found)}'))"
    return Found(f"{likes} AND {walked}", walk=True)


def count_limit(limit: int, values: dict[str, Any]) -> int:
    """A list's count limit: at most COUNT_LIMIT while a search narrows it."""
    return min(limit, COUNT_LIMIT) if values.get("q") else limit


class MessageSearch(widgets.StudioFilter):
    """The messages list's search box: words of the content (see plan)."""

    template = "widgets/filters/search.html"

    def __init__(self) -> None:
        super().__init__(name="q", label="Search words", placeholder=HINT)

    def parse(self, value: Any) -> Any:
        words(value)  # a 400 naming the filter, before any query runs
        return params.parse_filter_text(value)

    async def get_queryset(self, request: Request, value: Any, qs: QuerySet[Any]) -> Any:
        found = await plan(await self.parse_value(request, value))
        if found.walk:  # applied by the list page to a window of the other filters' rows
            request.state.walked_search = found
            return qs
        request.state.search_ids = True
        return found.apply(qs)


def by_ids(request: Request) -> bool:
    """Whether the list's search is a list of ids (rare words): its page is read by those ids
    (BITMAP_ONLY), never by walking the list's order. PostgreSQL expects the ids spread evenly
    over the messages; when none lay beyond a cursor, the check for a next page walked the
    timestamp index to its end (5,355,968 messages, 1.8 s at 10M)."""
    return getattr(request.state, "search_ids", False) is True


def walked(request: Request) -> Found | None:
    """The list's search when it walks the list's order (pages.read_page applies it), else
    None (it is in the query set already, or there is no search)."""
    found = getattr(request.state, "walked_search", None)
    return found if isinstance(found, Found) else None
