"""Keyset pages of a studio list: first / previous / next / last by (sort column, id), and counts.

A page is found from the row before or after it (a cursor in the URL: `after=<value>,<id>`,
`before=…`, or `end=1` for the last page), never by OFFSET: the last of 10M messages costs
what the first does, because "last" reads the same index backwards. The id breaks ties, so
rows with equal sort values are neither skipped nor repeated; a cursor carries its values, so
it still works after its row was deleted. Counts stop at STUDIO_EXACT_COUNT_LIMIT.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from tortoise import connections
from tortoise.expressions import Q, RawSQL
from tortoise.fields import DatetimeField
from tortoise.models import Model
from tortoise.queryset import QuerySet

from coach_db.apps.studio import params

# Query-string names of the pager; any other parameter (filters, sort, size) is kept by its links.
CURSOR_PARAMS = ("after", "before", "end", "page_num")


@dataclass(frozen=True)
class Sort:
    """A list's order: one column (not null) then the id, both the same direction."""

    column: str
    descending: bool
    # Columns the list's filters hold to one value, ordered by first: the same order, but
    # one PostgreSQL sees an index (status, started_at, id) can read as it is. Ordered by
    # (started_at, id) alone it walked the started_at index discarding 272,710 sessions for
    # the 48,290 active ones, which are the newest (the planner assumes them spread evenly).
    fixed: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Sort:
        return cls(value.removeprefix("-"), value.startswith("-"))

    def order_by(self, reverse: bool = False) -> list[str]:
        sign = "-" if self.descending != reverse else ""
        columns = [self.column] if self.column == "id" else [self.column, "id"]
        return [sign + c for c in (*self.fixed, *columns)]

    def key(self, row: dict[str, Any]) -> tuple[Any, int]:
        return row[self.column], row["id"]


def format_cursor(sort: Sort, key: tuple[Any, int]) -> str:
    """`value,id` as it goes into a URL (the id alone when sorting by id)."""
    value, pk = key
    if sort.column == "id":
        return str(pk)
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()
    return f"{value},{pk}"


def parse_cursor(model: type[Model], sort: Sort, text: str) -> tuple[Any, int]:
    """The (value, id) of a cursor from the URL, typed like the sort column; BadValue if not."""
    if len(text) > 1000:
        raise params.BadValue("too long")
    if sort.column == "id":
        pk = params.parse_id(text, model)
        return pk, pk
    value, comma, pk_text = text.rpartition(",")
    if not comma:
        raise params.BadValue("not a value and a row number")
    pk = params.parse_id(pk_text, model)
    field = model._meta.fields_map[sort.column]
    if isinstance(field, DatetimeField):
        return params.parse_cursor_datetime(value), pk
    params.check_text(value)
    if len(value) > (getattr(field, "max_length", None) or 1000):
        raise params.BadValue("too long")
    return value, pk


def after(qs: QuerySet[Any], sort: Sort, key: tuple[Any, int], reverse: bool) -> QuerySet[Any]:
    """The rows after `key` in the list's order (before it when `reverse`), in that direction.

    `(column, id) > (v, i)` is written as `column >= v AND (column > v OR id > i)`: the first
    term bounds the index scan, so it starts at the cursor instead of the table's start.
    """
    op = "lt" if sort.descending != reverse else "gt"
    value, pk = key
    if sort.column == "id":
        qs = qs.filter(**{f"id__{op}": pk})
    else:
        column = sort.column
        qs = qs.filter(
            Q(**{f"{column}__{op}e": value}),
            Q(
                Q(**{f"{column}__{op}": value}),
                Q(**{column: value, f"id__{op}": pk}),
                join_type="OR",
            ),
        )
    return qs.order_by(*sort.order_by(reverse))


def up_to(qs: QuerySet[Any], sort: Sort, key: tuple[Any, int], reverse: bool) -> QuerySet[Any]:
    """The rows not beyond `key` in the direction read: what `after` leaves out."""
    op = "gte" if sort.descending != reverse else "lte"
    value, pk = key
    if sort.column == "id":
        return qs.filter(**{f"id__{op}": pk})
    strict = op[:2]
    column = sort.column
    return qs.filter(
        Q(**{f"{column}__{op}": value}),
        Q(
            Q(**{f"{column}__{strict}": value}),
            Q(**{column: value, f"id__{op}": pk}),
            join_type="OR",
        ),
    )


@dataclass
class Page:
    rows: list[dict[str, Any]]
    first: str | None = None  # URLs of the pager; None where there is nothing to go to
    previous: str | None = None
    next: str | None = None
    last: str | None = None
    # A walked search (see read_page): the rows looked through, when the window ended before
    # the page was full (more may match beyond it); 0 otherwise.
    looked_through: int = 0
    # A walked search's first page that reached the last row: its rows are every match.
    complete: bool = False


async def read_page(
    request: Request,
    model: type[Model],
    qs: QuerySet[Any],
    sort: Sort,
    size: int,
    columns: list[str],
    narrow: Callable[[QuerySet[Any]], QuerySet[Any]] | None = None,
    window: int = 0,
) -> Page:
    """The rows of the page the URL names (first, after / before a cursor, or the last), with
    the pager's links. Raises params.BadValue for a cursor that cannot be read.

    With `narrow` (a search that tests row after row), the page is the rows `narrow` keeps
    among the next `window` rows of `qs` in the direction read: a test that matches nothing
    stops there instead of walking the whole table, and the page links on from the window's
    end."""
    query = request.query_params
    cursor_text = query.get("after") or query.get("before")
    reverse = "before" in query and "after" not in query
    key = parse_cursor(model, sort, cursor_text) if cursor_text else None
    at_end = key is None and query.get("end") is not None
    if key is not None:
        page_qs = after(qs, sort, key, reverse)
    else:
        page_qs = qs.order_by(*sort.order_by(reverse=at_end))
    window_end = None
    if narrow is not None:
        # From the first row the filters allow, `window` rows of the table's own order (an
        # index-only walk), whatever the filters: a filter no index serves (a role) costs no
        # more than the window. A filter an index orders by (a session) bounds the walk
        # itself: no window.
        start = await page_qs.limit(1).values(sort.column, "id") if not sort.fixed else []
        if start:
            plain = replace(sort, fixed=())  # the table's own order, not a filter's index
            whole = after(model.all(), plain, sort.key(start[0]), reverse or at_end)
            # (The window's last row: the start is its first.)
            ahead = await whole.offset(max(window - 2, 0)).limit(1).values(sort.column, "id")
            window_end = sort.key(ahead[0]) if ahead else None
        if window_end is not None:
            page_qs = up_to(page_qs, sort, window_end, reverse or at_end)
        page_qs = narrow(page_qs)
    rows = await page_qs.limit(size + 1).values(*columns)
    more = len(rows) > size  # another page beyond this one, in the direction read
    rows = rows[:size]
    if reverse or at_end:
        rows.reverse()
    looked_through = window if window_end is not None and not more else 0
    # Is there anything on the other side? A cursor's own row may be gone: look, don't assume.
    if key is None:
        behind = False
    elif narrow is not None:
        behind = True  # (looking would walk back without a bound)
    else:
        # In the list's order, not `.exists()`: without an ORDER BY the planner walked the
        # start index from the oldest session for an active one (553 ms at 10M).
        edge_key = sort.key(rows[-1] if reverse else rows[0]) if rows else key
        behind = bool(await after(qs, sort, edge_key, not reverse).limit(1).values_list("id"))
    has_previous, has_next = (more, behind) if reverse or at_end else (behind, more)
    if at_end:
        has_next = False

    def link(**changes: str) -> str:
        return list_url(request, **changes)

    complete = key is None and not at_end and window_end is None and not more
    page = Page(rows, looked_through=looked_through, complete=complete)
    if looked_through:  # go on from the window's end, not from the last match
        assert window_end is not None
        if reverse or at_end:
            page.first, page.previous = link(), link(before=format_cursor(sort, window_end))
        else:
            page.last, page.next = link(end="1"), link(after=format_cursor(sort, window_end))
    if has_previous:
        page.first = link()
        if rows and not (looked_through and (reverse or at_end)):
            page.previous = link(before=format_cursor(sort, sort.key(rows[0])))
    if has_next:
        page.last = link(end="1")
        if rows and not (looked_through and not (reverse or at_end)):
            page.next = link(after=format_cursor(sort, sort.key(rows[-1])))
    if not rows and key is not None and not looked_through:  # a cursor past every row
        page.first, page.last = link(), link(end="1")
    return page


def list_url(request: Request, **changes: str) -> str:
    """This list's URL with its filters, sort and size, on its first page, with `changes`."""
    kept = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in CURSOR_PARAMS and k not in changes
    ]
    return f"{request.url.path}?{urlencode([*kept, *changes.items()])}"


async def count_text(
    request: Request,
    model: type[Model],
    qs: QuerySet[Any],
    filtered: bool,
    cap: int | None = None,
    unindexed: bool = False,
) -> str:
    """How many rows the list has, counted up to `cap` (default STUDIO_EXACT_COUNT_LIMIT):
    "1,234", or beyond the cap "more than 10,000"; a whole table estimated at more than twice
    the cap is "about 9,980,000" (pg_class.reltuples, which (auto)VACUUM and ANALYZE keep
    current), uncounted. A list `unindexed` (filtered by a column no index orders it by, a
    message's role) that PostgreSQL expects to hold more than twice the cap is "about N" too:
    counting to the cap would read cap / selectivity rows (90,000 for 10,001 coach messages)."""
    if cap is None:
        cap = int(request.app.state.settings.studio_exact_count_limit)
    if unindexed and (expected := await planned_rows(model, qs, 20 * cap)) > 2 * cap:
        return f"about {round_estimate(expected):,}"
    estimate, counted = await capped_count(model, qs, cap + 1, None if filtered else 2 * cap)
    if counted is None:
        return f"about {round_estimate(estimate):,}"
    return f"{counted:,}" if counted <= cap else f"more than {cap:,}"


async def capped_count(
    model: type[Model], qs: QuerySet[Any], limit: int, estimate_above: int | None
) -> tuple[int, int | None]:
    """The table's estimated rows and the rows of `qs` counted up to `limit`, in one statement;
    the count is skipped (None) when `estimate_above` is given and the estimate exceeds it.

    `SELECT count(*) FROM (… LIMIT n)` stops reading after n rows; the former
    `count(*) … WHERE id IN (… LIMIT n)` made PostgreSQL hash-join the whole table (a
    sequential scan of 321,000 sessions for every sessions page).
    """
    # Unordered (Tortoise adds no default ORDER BY to an annotated query), so PostgreSQL counts
    # through whichever index fits the filter, e.g. a search index, not the list's order.
    inner = qs.annotate(unordered=RawSQL("1")).limit(limit).values_list("id")
    inner._make_query()
    sql, values = inner.query.get_parameterized_sql()
    table, threshold = f"${len(values) + 1}", f"${len(values) + 2}"
    rows = await connections.get("default").execute_query_dict(
        f"SELECT e.n AS estimate, CASE WHEN {threshold}::bigint >= 0 AND e.n > {threshold}::bigint"
        f" THEN NULL ELSE (SELECT count(*) FROM ({sql}) AS page) END AS counted"
        f" FROM (SELECT coalesce((SELECT greatest(reltuples, 0)::bigint FROM pg_class"
        f" WHERE oid = to_regclass({table})), 0) AS n) AS e",
        [*values, f'"{model._meta.db_table}"', -1 if estimate_above is None else estimate_above],
    )
    return int(rows[0]["estimate"]), rows[0]["counted"]


async def planned_rows(model: type[Model], qs: QuerySet[Any], table_above: int) -> int:
    """The rows PostgreSQL expects `qs` to have (EXPLAIN: no row is read); 0 unless the table
    is estimated above `table_above` rows (a small table is counted, however filtered)."""
    db = connections.get("default")
    size = await db.execute_query_dict(
        "SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = to_regclass($1)",
        [f'"{model._meta.db_table}"'],
    )
    if not size or int(size[0]["n"]) <= table_above:
        return 0
    inner = qs.annotate(unordered=RawSQL("1")).values_list("id")
    inner._make_query()
    sql, values = inner.query.get_parameterized_sql()
    rows = await db.execute_query_dict(f"EXPLAIN (FORMAT JSON) {sql}", values)
    plan = rows[0]["QUERY PLAN"]
    return int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])


def round_estimate(n: int) -> int:
    """An estimate to three significant digits: it is not exact, so it should not look it."""
    digits = len(str(n))
    step: int = 10 ** max(digits - 3, 0)
    return (n + step // 2) // step * step
