"""Every studio page its own definitions offer, generated and timed at 100k and 10M (issue 20).

    uv run python bench/studio_pages.py --database-100k i20a_100k --database-10m i20a_10m \
        [--reps 3] [--out bench/results/studio-pages-10m.txt]

The pages are not a hand-picked list: they come from admin.resources.RESOURCES, each list's
`filters` and `sort_keys`, and the studio's detail routes.
- every list, unfiltered and with each filter at a common value, a rare value and a value with
  no rows (a scenario created by this benchmark, a user without sessions, a future day);
- each of those in every offered sort, both directions, on its first, middle (a cursor half-way
  through the sort column's range) and last page;
- the message search with one word (common / rare / absent), two words that co-occur and two
  that never do (chosen from the data by ts_stat), each also combined with every other filter;
- `--combos` pages per list (40) crossing two or three of its filters (the search too), each at
  a common, rare or absent value, in a random order and on a random page (first, after or
  before a cursor half-way, last), drawn from a generator seeded by the list's name;
- the audit trail page (its own route): each filter at a common, rare and absent value and
  `--combos` crossing two or three, on the first page and an older one;
- the edit form, history and erase pages of the extreme rows: the user with most sessions, a
  user with none, a scenario with none, the longest session and a 2,000-message session (both
  made by this benchmark if missing), with their transcripts.
Both databases get the same pages; requests alternate between them (100k, 10M, 100k, ...) so
that a shared machine's load weighs on both alike. Then eight clients hammer the slowest page
while every other page is requested once more: their latencies show whether one page can stall
the rest. The databases are changed only by the rows named above (make your own copies:
CREATE DATABASE x TEMPLATE coach_bench_10m).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from studio import SIZES, STAFF_EMAIL, Studio, _cli, _url, sign_in  # bench/studio.py

from coach_db.apps.studio import audit, search, widgets
from coach_db.apps.studio.resources import RESOURCES, StudioModel
from coach_db.models import AuditAction

HAMMER_CLIENTS = 8
BIG_SESSION = 2000
MARK = "bench-pages"  # slug / e-mail marker of the rows this benchmark adds


@dataclass
class Case:
    """One generated page: its name (the same at both sizes) and its URL at each size."""

    name: str
    kind: str
    urls: list[str]
    seconds: list[list[float]] = field(default_factory=list)
    statuses: list[set[int]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    hammered: list[float] = field(default_factory=list)


# --- what the rows look like: values for the filters, read from each database ----------------


@dataclass
class Facts:
    """What a database holds that the pages need: per filter, (label, value) of a common, a
    rare and an absent value; extreme rows; search words; cursor midpoints."""

    filter_values: dict[tuple[str, str], list[tuple[str, str]]]
    middles: dict[tuple[str, str], str]
    rows: dict[str, int]


async def prepare(conn: asyncpg.Connection) -> dict[str, int]:
    """The rows this benchmark adds when missing: a scenario with no sessions (created "a
    minute ago"), a user with none, a session without messages and one with 2,000."""
    scenario = await conn.fetchval("SELECT id FROM scenario WHERE slug = $1", MARK)
    if scenario is None:
        scenario = await conn.fetchval(
            "INSERT INTO scenario (name, slug, description, partner_persona,"
            " partner_system_prompt, coach_system_prompt, partner_model, coach_model, is_active,"
            " created_at) SELECT 'Bench: no sessions', $1, description, partner_persona,"
            " partner_system_prompt, coach_system_prompt, partner_model, coach_model, true,"
            " now() FROM scenario ORDER BY id LIMIT 1 RETURNING id",
            MARK,
        )
    lonely = await conn.fetchval('SELECT id FROM "user" WHERE email = $1', f"{MARK}@example.com")
    if lonely is None:
        lonely = await conn.fetchval(
            "INSERT INTO \"user\" (email, username, is_staff, role) VALUES ($1, 'Bench Nobody',"
            " false, 'viewer') RETURNING id",
            f"{MARK}@example.com",
        )
    used = await conn.fetchval("SELECT scenario_id FROM conversation_session LIMIT 1")
    sessions = {}
    for name, size in (("empty session", 0), ("2,000-message session", BIG_SESSION)):
        found = await conn.fetchval(
            "SELECT id FROM conversation_session WHERE user_id = $1 AND total_messages = $2",
            lonely,
            size,
        )
        if found is None:
            async with conn.transaction():
                found = await conn.fetchval(
                    "INSERT INTO conversation_session (user_id, scenario_id, status, started_at)"
                    " VALUES ($1, $2, 'active', now() - interval '2 days') RETURNING id",
                    lonely,
                    used,
                )
                await conn.execute(
                    "INSERT INTO message (session_id, role, content, timestamp, metadata)"
                    " SELECT $1, (ARRAY['user','partner','coach'])[1 + i % 3],"
                    " 'bench turn ' || i, now() - interval '2 days' + i * interval '1 second',"
                    " '{}' FROM generate_series(1, $2) AS i",
                    found,
                    size,
                )
        sessions[name] = found
    return {"scenario without sessions": scenario, "user without sessions": lonely, **sessions}


async def stats_values(
    conn: asyncpg.Connection, table: str, column: str
) -> list[tuple[Any, float]]:
    """(value, frequency) of a column from pg_stats, commonest first."""
    row = await conn.fetchrow(
        "SELECT most_common_vals::text::text[] AS v, most_common_freqs AS f FROM pg_stats"
        " WHERE tablename = $1 AND attname = $2",
        table,
        column,
    )
    if row is None or row["v"] is None:
        return []
    return sorted(zip(row["v"], row["f"], strict=True), key=lambda x: -x[1])


async def words(conn: asyncpg.Connection) -> dict[str, str]:
    """Search words chosen from a sample of the messages: the commonest word of 4+ letters, a
    rare one, two common words that often meet, two that never meet in the sample."""
    rows = await conn.fetch(
        "SELECT word, ndoc FROM ts_stat($$SELECT to_tsvector('simple', content) FROM"
        " (SELECT content FROM message ORDER BY id LIMIT 60000) m$$)"
        " WHERE length(word) >= 4 AND word ~ '^[a-z]+$' ORDER BY ndoc DESC, word"
    )
    common = [r["word"] for r in rows[:40]]
    total = rows[0]["ndoc"]
    rare = next((r["word"] for r in rows if r["ndoc"] <= max(2, total // 2000)), rows[-1]["word"])
    sample = await conn.fetch(
        "SELECT to_tsvector('simple', content)::text AS v FROM message ORDER BY id LIMIT 60000"
    )
    docs = [set(w.split(":")[0].strip("'") for w in r["v"].split()) for r in sample]
    best_meet, best_never = ("", ""), ("", "")
    meet_n, never_score = -1, -1
    for i, a in enumerate(common[:25]):
        for b in common[i + 1 : 25]:
            both = sum(1 for d in docs if a in d and b in d)
            score = min(sum(a in d for d in docs[:5000]), sum(b in d for d in docs[:5000]))
            if both > meet_n and i > 0:
                meet_n, best_meet = both, (a, b)
            if both == 0 and score > never_score:
                never_score, best_never = score, (a, b)
    return {
        "common word": common[0],
        "rare word": rare,
        "absent word": "zqxvjk",
        "two words that co-occur": " ".join(best_meet),
        "two words that never meet": " ".join(best_never) or "zqxvjk qjzxv",
    }


def _day(value: datetime) -> str:
    return value.astimezone(UTC).date().isoformat()


async def filter_values(
    conn: asyncpg.Connection, resource: type[StudioModel], extra: dict[str, int]
) -> dict[str, list[tuple[str, str]]]:
    """Per filter of `resource` (by its parameter name): [(label, value)] common, rare, zero."""
    table = resource.model._meta.db_table
    found: dict[str, list[tuple[str, str]]] = {}
    for flt in resource.filters:
        name = flt.context["name"]
        if isinstance(flt, search.MessageSearch):
            continue  # the search words (see words())
        if isinstance(flt, widgets.Search):
            common = (
                await conn.fetchval(f"SELECT split_part(email, '@', 2) FROM \"{table}\" LIMIT 1")
                if table == "user"
                else "a"
            )
            column = "username" if table == "user" else "slug"
            rare = await conn.fetchval(f'SELECT "{column}" FROM "{table}" ORDER BY id DESC LIMIT 1')
            found[name] = [("common", str(common)), ("rare", str(rare)), ("none", "zqxvjk")]
        elif isinstance(flt, widgets.OneOf | widgets.YesNo):
            column = name
            stats = await stats_values(conn, table, column)
            if isinstance(flt, widgets.OneOf):
                options = [m.value for m in flt.enum]
            else:
                options = ["true", "false"]
            freq = {str(v): f for v, f in stats}
            if isinstance(flt, widgets.YesNo):
                freq = {("true" if k in ("t", "true") else "false"): f for k, f in freq.items()}
            ranked = sorted(options, key=lambda o: -freq.get(o, 0.0))
            values = [("common", ranked[0]), ("rare", ranked[-1])]
            absent = [o for o in options if freq.get(o, 0.0) == 0.0]
            if absent:
                values[1] = (
                    ("rare", ranked[-1 - len(absent)]) if len(ranked) > len(absent) else values[1]
                )
                values.append(("none", absent[0]))
            found[name] = values
        elif isinstance(flt, widgets.RelatedRow | widgets.Id):
            target = flt.model._meta.db_table
            if table == "message":  # sessions keep their message count
                common = await conn.fetchval(
                    "SELECT id FROM conversation_session ORDER BY total_messages DESC LIMIT 1"
                )
                rare = await conn.fetchval(
                    "SELECT id FROM conversation_session WHERE total_messages = 1 LIMIT 1"
                )
                none = extra["empty session"]
            else:
                counted = await conn.fetch(
                    f'SELECT "{name}" AS v, count(*) AS n FROM "{table}" GROUP BY 1 ORDER BY 2 DESC'
                )
                common, rare = counted[0]["v"], counted[-1]["v"]
                none = extra[
                    "scenario without sessions" if target == "scenario" else "user without sessions"
                ]
            found[name] = [("common", str(common)), ("rare", str(rare)), ("none", str(none))]
        elif isinstance(flt, widgets.Since):
            column = name.split("__")[0]
            low, high = await ends(conn, table, column)
            if isinstance(flt, widgets.Until):
                days = [_day(high), _day(low), _day(low - timedelta(days=1))]
            else:
                days = [_day(low), _day(high), _day(high + timedelta(days=1))]
            found[name] = list(zip(("common", "rare", "none"), days, strict=True))
    return found


async def ends(conn: asyncpg.Connection, table: str, column: str) -> tuple[Any, Any]:
    row = await conn.fetchrow(f'SELECT min("{column}"), max("{column}") FROM "{table}"')
    assert row is not None
    return row[0], row[1]


async def middle_cursor(conn: asyncpg.Connection, table: str, column: str) -> str:
    """A cursor half-way through a sort column's range (no OFFSET: an index's two ends)."""
    low, high = await ends(conn, table, column)
    if column == "id":
        return str((low + high) // 2)
    if isinstance(low, datetime):
        middle = low + (high - low) / 2
        return f"{middle.astimezone(UTC).isoformat()},1"
    # Text: the middle row of a small table (users, scenarios).
    value = await conn.fetchval(
        f'SELECT "{column}" FROM "{table}" ORDER BY "{column}" OFFSET'
        f' (SELECT count(*) / 2 FROM "{table}") LIMIT 1'
    )
    return f"{value},1"


def resource_path(resource: type[StudioModel]) -> str:
    return f"/admin/{resource.model.__name__.lower()}"


def combinations(
    label: str,
    base: str,
    values: dict[str, list[tuple[str, str]]],
    sorts: tuple[str, ...],
    middles: dict[str, str],
    count: int,
) -> list[tuple[str, str, str]]:
    """`count` pages of the list at `base` filtered by two or three of its filters at once
    (search included), each at a common, rare or absent value, in a random order and on a
    random page: the first, after or before a cursor half-way, or the last. Drawn from a
    generator seeded by the list's label, so both databases get the same pages by name."""
    draw = random.Random(f"studio-pages {label}")
    names = list(values)
    pages: list[tuple[str, str, str]] = []
    if len(names) < 2:
        return pages
    for _ in range(count):
        chosen = draw.sample(names, draw.randint(2, min(3, len(names))))
        query: dict[str, str] = {}
        parts = []
        for name in chosen:
            which, value = draw.choice(values[name])
            query[name] = value
            parts.append(f"{name}={which}")
        sort, sign = draw.choice(sorts), draw.choice(("", "-"))
        where = draw.choice(("first", "after", "before", "last"))
        params = {**query, "sort": f"{sign}{sort}"}
        if where in ("after", "before"):
            params[where] = middles[sort]
        elif where == "last":
            params["end"] = "1"
        name = f"{label} {' & '.join(parts)} sort={sign}{sort} {where}"
        pages.append((name, "combination", f"{base}?{urlencode(params)}"))
    return pages


async def audit_pages(conn: asyncpg.Connection, combos: int) -> list[tuple[str, str, str]]:
    """The audit trail page (its own route, not a resource): each of its filters (actor by id
    and by e-mail, model, row, action, since, until) at a common, rare and absent value, then
    `combos` crossing two or three of them, each on its first page and on an older page (the
    cursor is an event half-way through the trail)."""
    values: dict[str, list[tuple[str, str]]] = {}

    async def ranked(column: str) -> list[Any]:
        rows = await conn.fetch(
            f'SELECT "{column}" AS v FROM audit_event WHERE "{column}" IS NOT NULL'
            " GROUP BY 1 ORDER BY count(*) DESC, 1"
        )
        return [r["v"] for r in rows]

    actors = await ranked("actor_id")
    emails = await ranked("actor_email")
    models = await ranked("model")
    actions = await ranked("action")
    rows = await ranked("row_id")
    if actors:
        values["actor"] = [
            ("common", str(actors[0])),
            ("rare", str(actors[-1])),
            ("none", "999999"),
        ]
    if emails:
        values["actor e-mail"] = [
            ("common", emails[0]),
            ("rare", emails[-1]),
            ("none", "nobody@example.com"),
        ]
    absent_model = next((m for m in audit.LABELS if m not in models), None)
    if models:
        values["model"] = [("common", models[0]), ("rare", models[-1])]
        if absent_model:
            values["model"].append(("none", absent_model))
    absent_action = next((a.value for a in AuditAction if a.value not in actions), None)
    if actions:
        values["action"] = [("common", actions[0]), ("rare", actions[-1])]
        if absent_action:
            values["action"].append(("none", absent_action))
    if rows:
        values["row"] = [("common", str(rows[0])), ("rare", str(rows[-1])), ("none", "999999999")]
    low, high = await ends(conn, "audit_event", "created_at")
    if low is not None:
        levels = ("common", "rare", "none")
        since = [_day(low), _day(high), _day(high + timedelta(days=1))]
        until = [_day(high), _day(low), _day(low - timedelta(days=1))]
        values["since"] = list(zip(levels, since, strict=True))
        values["until"] = list(zip(levels, until, strict=True))
    middle = await conn.fetchval(
        "SELECT id FROM audit_event ORDER BY id OFFSET (SELECT count(*) / 2 FROM audit_event)"
        " LIMIT 1"
    )
    param = {"actor e-mail": "actor"}
    variants: list[tuple[str, dict[str, str]]] = [("all", {})]
    for name, cases in values.items():
        for which, value in cases:
            variants.append((f"{name}={which}", {param.get(name, name): value}))
    draw = random.Random("studio-pages audit")
    names = list(values)
    for _ in range(combos if len(names) >= 2 else 0):
        chosen = draw.sample(names, draw.randint(2, min(3, len(names))))
        if "actor" in chosen and "actor e-mail" in chosen:
            chosen.remove("actor e-mail")
        query, parts = {}, []
        for name in chosen:
            which, value = draw.choice(values[name])
            query[param.get(name, name)] = value
            parts.append(f"{name}={which}")
        variants.append((" & ".join(parts), query))
    pages = []
    for title, query in variants:
        pages.append((f"audit {title} first", "audit", f"/admin/audit?{urlencode(query)}"))
        if middle is not None:
            older = {**query, "before": str(middle)}
            pages.append((f"audit {title} older", "audit", f"/admin/audit?{urlencode(older)}"))
    return pages


async def generate(
    url: str, said: dict[str, str] | None = None, combos: int = 0
) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """[(name, kind, path)] of every generated page for the database at `url`, and the search
    words (`said`, or chosen from this database); `combos` pages per list crossing several
    filters (combinations())."""
    conn = await asyncpg.connect(url)
    try:
        extra = await prepare(conn)
        await conn.execute('ANALYZE conversation_session; ANALYZE scenario; ANALYZE "user"')
        said = said or await words(conn)
        pages: list[tuple[str, str, str]] = []
        for resource in RESOURCES:
            base = resource_path(resource) + "/list"
            table = resource.model._meta.db_table
            label = resource.label.lower()
            values = await filter_values(conn, resource, extra)
            variants: list[tuple[str, dict[str, str]]] = [("", {})]
            for name, cases in values.items():
                for which, value in cases:
                    variants.append((f"{name}={which}", {name: value}))
            if table == "message":
                for which, text in said.items():
                    variants.append((f"q={which}", {"q": text}))
                    for name, cases in values.items():
                        for other, value in cases:
                            variants.append(
                                (f"q={which} & {name}={other}", {"q": text, name: value})
                            )
            middles = {c: await middle_cursor(conn, table, c) for c in resource.sort_keys}
            for title, query in variants:
                searched = "q" in query and table == "message"
                for sort in resource.sort_keys:
                    for sign in ("", "-"):
                        # A search crossed with other filters: the default order only.
                        if searched and "&" in title and f"{sign}{sort}" != resource.default_sort:
                            continue
                        for where in ("first", "middle", "last"):
                            params = {**query, "sort": f"{sign}{sort}"}
                            if where == "middle":
                                params["after"] = middles[sort]
                            elif where == "last":
                                params["end"] = "1"
                            name = f"{label} {title or 'all'} sort={sign}{sort} {where}"
                            pages.append((name, "list", f"{base}?{urlencode(params)}"))
            searchable = {**values, "q": list(said.items())} if table == "message" else values
            pages += combinations(label, base, searchable, resource.sort_keys, middles, combos)
        # The extreme rows: detail (edit form), history and erase pages, transcripts.
        busiest = await conn.fetchval(
            "SELECT user_id FROM conversation_session GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        longest = await conn.fetchval(
            "SELECT id FROM conversation_session ORDER BY total_messages DESC, id LIMIT 1"
        )
        first_message = await conn.fetchval(
            "SELECT id FROM message WHERE session_id = $1 ORDER BY timestamp, id LIMIT 1",
            extra["2,000-message session"],
        )
        rows = {
            "user with most sessions": ("user", busiest),
            "user without sessions": ("user", extra["user without sessions"]),
            "scenario without sessions": ("scenario", extra["scenario without sessions"]),
            "longest session": ("conversationsession", longest),
            "2,000-message session": ("conversationsession", extra["2,000-message session"]),
            "message of the 2,000-message session": ("message", first_message),
        }
        for title, (resource_name, pk) in rows.items():
            pages.append((f"edit form: {title}", "detail", f"/admin/{resource_name}/update/{pk}"))
            pages.append((f"history: {title}", "detail", f"/admin/{resource_name}/history/{pk}"))
            if resource_name == "user":
                pages.append((f"erase page: {title}", "detail", f"/admin/user/erase/{pk}"))
            if resource_name == "conversationsession":
                for where, tail in (("first", ""), ("last", "?end=1")):
                    pages.append(
                        (
                            f"transcript {where} page: {title}",
                            "detail",
                            f"/admin/conversationsession/transcript/{pk}{tail}",
                        )
                    )
        pages += await audit_pages(conn, combos)
        pages.append(("dashboard", "detail", "/admin/"))
        pages.append(
            (
                "scenario versions: scenario without sessions",
                "detail",
                f"/admin/scenario/{extra['scenario without sessions']}/versions",
            )
        )
    finally:
        await conn.close()
    return pages, said


# --- timing ----------------------------------------------------------------------------------


async def fetch(client: httpx.AsyncClient, path: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    response = await client.get(path)
    return time.perf_counter() - started, response.status_code, len(response.content)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def bench(args: argparse.Namespace) -> str:
    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    password = secrets.token_urlsafe(16)
    keys = ["100k", "10m"]
    names = {"100k": args.database_100k, "10m": args.database_10m}
    urls = {k: _url(args.server, names[k] or SIZES[k].database) for k in keys}
    generated: dict[str, list[tuple[str, str, str]]] = {}
    said = None  # the same words at both sizes, chosen from the 100k database
    for key in keys:
        env = {**os.environ, "DATABASE_URL": urls[key]}
        _cli("createstaff", STAFF_EMAIL, "--password-stdin", env=env, stdin=password + "\n")
        log(f"Generating the pages of {names[key] or SIZES[key].database} ...")
        generated[key], said = await generate(urls[key], said, args.combos)
    by_name = {name: (kind, path) for name, kind, path in generated["100k"]}
    cases = [
        Case(name, kind, [path, dict((n, p) for n, _, p in generated["10m"]).get(name, path)])
        for name, (kind, path) in by_name.items()
    ]
    if args.only:
        cases = [c for c in cases if any(part in c.name for part in args.only.split("|"))]
    log(f"{len(cases)} pages, {args.reps} requests each per size")
    load = [os.getloadavg()[0]]
    async with Studio(urls["100k"], args.redis) as small, Studio(urls["10m"], args.redis) as big:
        studios = [small, big]
        timeout = httpx.Timeout(60.0)
        clients = [
            httpx.AsyncClient(
                base_url=s.base, cookies=await sign_in(s.base, password), timeout=timeout
            )
            for s in studios
        ]
        try:
            for number, case in enumerate(cases, 1):
                case.seconds = [[], []]
                case.statuses = [set(), set()]
                case.sizes = [0, 0]
                for side in (0, 1):
                    await fetch(clients[side], case.urls[side])  # warm
                for _ in range(args.reps):
                    for side in (0, 1):
                        seconds, status, size = await fetch(clients[side], case.urls[side])
                        case.seconds[side].append(seconds)
                        case.statuses[side].add(status)
                        case.sizes[side] = size
                if number % 100 == 0:
                    load.append(os.getloadavg()[0])
                    log(f"  {number} / {len(cases)}, load {load[-1]:.1f}")
            slowest = max(cases, key=lambda c: statistics.median(c.seconds[1]))
            log(f"Hammering {slowest.name!r} with {HAMMER_CLIENTS} clients, timing the rest")
            running = True
            hammer_latencies: list[float] = []

            async def hammer() -> None:
                async with httpx.AsyncClient(
                    base_url=big.base, cookies=clients[1].cookies, timeout=timeout
                ) as c:
                    while running:
                        hammer_latencies.append((await fetch(c, slowest.urls[1]))[0])

            tasks = [asyncio.create_task(hammer()) for _ in range(HAMMER_CLIENTS)]
            await asyncio.sleep(2)
            for case in cases:
                if case is slowest:
                    continue
                for _ in range(args.hammer_reps):
                    case.hammered.append((await fetch(clients[1], case.urls[1]))[0])
            running = False
            await asyncio.gather(*tasks)
            load.append(os.getloadavg()[0])
        finally:
            for client in clients:
                await client.aclose()
    return report(args, cases, slowest, hammer_latencies, load, said or {})


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def report(
    args: argparse.Namespace,
    cases: list[Case],
    slowest: Case,
    hammer_latencies: list[float],
    load: list[float],
    said: dict[str, str],
) -> str:
    lines = [
        f"coach-db studio, every generated page, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "command: uv run python bench/studio_pages.py " + " ".join(sys.argv[1:]),
        f"{os.cpu_count()} cores (the load averages below say what else ran); one uvicorn"
        f" worker per studio; {args.reps} requests per page and size after a warm-up, 100k and 10M"
        " alternating; p99 of so few requests is their maximum",
        f"load average (1 min) during the run: {', '.join(f'{x:.1f}' for x in load)}",
        "search words: " + ", ".join(f"{k} {v!r}" for k, v in said.items()),
        "",
    ]
    over_ratio = [
        c
        for c in cases
        if statistics.median(c.seconds[1]) > 1.5 * statistics.median(c.seconds[0])
        and statistics.median(c.seconds[1]) > 0.02
    ]
    over_300 = [c for c in cases if max(c.seconds[1]) >= 0.3]
    over_1s = [c for c in cases if max(c.seconds[1]) >= 1.0]
    not_ok = [c for c in cases if c.statuses[1] - {200}]
    p50_10m = sorted(statistics.median(c.seconds[1]) for c in cases)
    lines += [
        f"{len(cases)} pages. 10M p50: median {_ms(statistics.median(p50_10m))} ms, worst"
        f" {_ms(p50_10m[-1])} ms. Max of any 10M request:"
        f" {_ms(max(max(c.seconds[1]) for c in cases))} ms.",
        f"Pages with 10M p50 > 1.5x their 100k p50 (and > 20 ms): {len(over_ratio)};"
        f" with a 10M request >= 300 ms: {len(over_300)}; >= 1 s: {len(over_1s)};"
        f" not HTTP 200 at 10M: {len(not_ok)}",
        "",
        f"Hammer: {HAMMER_CLIENTS} clients on the slowest page ({slowest.name}) at 10M:"
        f" {len(hammer_latencies)} answers, p50"
        f" {_ms(statistics.median(hammer_latencies or [0]))} ms;"
        " meanwhile every other page once: p50"
        f" {_ms(statistics.median([x for c in cases for x in c.hammered] or [0]))} ms, p99"
        f" {_ms(quantile([x for c in cases for x in c.hammered] or [0], 0.99))} ms, max"
        f" {_ms(max([x for c in cases for x in c.hammered] or [0]))} ms; pages >= 300 ms:"
        f" {sum(1 for c in cases if c.hammered and max(c.hammered) >= 0.3)}",
        "",
        "| page | 100k p50 / max ms | 10M p50 / max ms | 10M / 100k"
        " | 10M while hammered ms | HTTP | 10M KB |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        a, b = statistics.median(c.seconds[0]), statistics.median(c.seconds[1])
        flag = ""
        if max(c.seconds[1]) >= 0.3 or (b > 1.5 * a and b > 0.02):
            flag = " **"
        hammered = _ms(max(c.hammered)) if c.hammered else "(hammered)"
        lines.append(
            f"| {c.name}{flag} | {_ms(a)} / {_ms(max(c.seconds[0]))} | {_ms(b)} /"
            f" {_ms(max(c.seconds[1]))} | {b / a:.1f}x | {hammered} |"
            f" {'/'.join(map(str, sorted(c.statuses[1])))} | {c.sizes[1] / 1024:,.0f} |"
        )
    lines.append("")
    lines.append(
        "** : 10M p50 above 1.5x the 100k p50 (and above 20 ms), or a 10M request >= 300 ms"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="requests per page and size")
    parser.add_argument("--hammer-reps", type=int, default=1, help="per page while hammered")
    parser.add_argument("--only", help="only pages whose name contains one of these (a|b)")
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--database-100k", help="default coach_bench_100k (it gets rows added)")
    parser.add_argument("--database-10m", help="default coach_bench_10m (it gets rows added)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--list", action="store_true", help="print the generated pages and stop")
    parser.add_argument(
        "--combos", type=int, default=40, help="pages per list crossing 2-3 filters (random)"
    )
    args = parser.parse_args()
    if args.list:
        url = _url(args.server, args.database_100k or SIZES["100k"].database)
        pages, said = asyncio.run(generate(url, None, args.combos))
        for name, _, path in pages:
            print(f"{name}\t{path}")
        print(f"{len(pages)} pages; {said}")
        return
    text = asyncio.run(bench(args))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
