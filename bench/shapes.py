"""Every idiomatic Tortoise query shape over every model, and the package's functions, against
what a careful engineer writes with asyncpg alone (issue 20 §3; not run by tests).

    uv run python bench/shapes.py --db postgres://postgres@127.0.0.1:5432/i20b_10m
        [--writes] [--pairs 15] [--only SUBSTRING]
        [--out bench/results/shapes-10m.txt] [--explain]

The shapes are generated, not picked: for each model of coach_db, a filter on its first
foreign key (or, without one, on its first boolean field), at about 31 and about 2,000 rows
(the key values are chosen from the data: the one whose row count is nearest), then that
filter as it is (the model's default ordering), `.order_by(<first datetime field>)`,
`.values()`, `.values_list()`, `select_related(f)` and `prefetch_related(f)` for each of its
foreign keys, and `annotate(n=Count(r))` for each reverse relation; for a filter without a
limit, `.count()`, `.exists()` and `.first()` too; and per model `.get(pk=…)` of its middle row.

The raw side, per shape: the minimal SQL for the same rows (explicit columns, the same order,
a LEFT JOIN for select_related, a second `= ANY($1)` query for prefetch_related, a GROUP BY
for annotate), run through an asyncpg pool (statements prepared and cached by asyncpg; no
reset statement on release, as the package's own pool), the records turned into dicts (a
nested dict for the related row), jsonb decoded by pydantic-core's `from_json` (a pool codec:
the fastest decoder in the dependencies), enums left as text.
`user_history` and `transcript` against the same: dicts, from the fewest queries a careful
engineer would write. `add_message` against the same INSERT … SELECT through asyncpg, the
metadata dict encoded per call by pydantic-core's `to_json`.

Timing: interleaved pairs (raw then package, the order alternating), each side's run long
enough to take ~40 ms; the figure is raw time / package time (1.0 = as fast as raw), median
[min-max] over the pairs, so load spikes of the shared machine hit both sides of a pair. The
last column is the same ratio of this process's CPU time (the client's work, without the
server's and without waiting): steadier on a loaded machine, and where the package's own cost
shows.
Without --writes it only reads (any database). With --writes, --db must be a scratch copy
(CREATE DATABASE x TEMPLATE coach_bench_10m): it gets a 2,000-message session if it has none
(the demo seed's have at most 71) and add_message writes to new sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from pydantic_core import from_json, to_json
from pypika_tortoise.enums import Order
from tortoise.fields.data import BooleanField, DatetimeField
from tortoise.fields.relational import ForeignKeyFieldInstance
from tortoise.functions import Count
from tortoise.models import Model

import coach_db
from coach_db import (
    ConversationSession,
    Message,
    Scenario,
    ScenarioVersion,
    User,
    add_message,
    transcript,
    user_history,
)
from coach_db.limits import MAX_HISTORY_MESSAGES, MAX_HISTORY_SESSIONS

ROOT = Path(__file__).resolve().parent.parent
POOL = 10
MODELS: list[type[Model]] = [User, Scenario, ScenarioVersion, ConversationSession, Message]
SIZES = (31, 2000)
Call = Callable[[], Awaitable[Any]]


@dataclass
class Shape:
    name: str
    rows: int
    raw: Call
    package: Call
    sql: str = ""  # what Tortoise sends, for EXPLAIN
    target: float = 0.8


# --- the raw side: SQL and dicts from the models' metadata -------------------------------------


def q(name: str) -> str:
    return f'"{name}"'


def columns(model: type[Model]) -> list[str]:
    return list(model._meta.fields_db_projection.values())


def order_sql(model: type[Model], alias: str, ordering: Any = None) -> str:
    meta = model._meta
    parts = []
    for field, order in ordering or meta._default_ordering:
        column = meta.fields_db_projection.get(field, field)
        parts.append(f"{alias}.{q(column)} {'DESC' if order.value == 'DESC' else 'ASC'}")
    return ", ".join(parts)


def select_list(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{q(c)}" for c in columns(model))


class Raw:
    """What a careful engineer writes with asyncpg for one filter: rows to dicts."""

    def __init__(self, pool: asyncpg.Pool, model: type[Model], key: str, value: Any, limit: int):
        self.pool, self.model, self.value = pool, model, value
        meta = model._meta
        self.key_column = meta.fields_db_projection[key]
        self.where = f"t.{q(self.key_column)} = $1"
        self.limit = f" LIMIT {limit}" if limit else ""
        self.table = q(meta.db_table)

    def base(self, ordering: Any = None) -> str:
        return (
            f"SELECT {select_list(self.model, 't')} FROM {self.table} t WHERE {self.where}"
            f" ORDER BY {order_sql(self.model, 't', ordering)}{self.limit}"
        )

    def rows(self, ordering: Any = None) -> Call:
        sql = self.base(ordering)

        async def run() -> list[dict[str, Any]]:
            return [dict(r) for r in await self.pool.fetch(sql, self.value)]

        return run

    def tuples(self) -> Call:
        sql = self.base()

        async def run() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in await self.pool.fetch(sql, self.value)]

        return run

    def joined(self, fk: str) -> Call:
        field: Any = self.model._meta.fields_map[fk]
        related = field.related_model
        own, theirs = columns(self.model), columns(related)
        n = len(own)
        sql = (
            f"SELECT {select_list(self.model, 't')}, {select_list(related, 'r')}"
            f" FROM {self.table} t LEFT JOIN {q(related._meta.db_table)} r"
            f' ON r."id" = t.{q(field.source_field)} WHERE {self.where}'
            f" ORDER BY {order_sql(self.model, 't')}{self.limit}"
        )

        async def run() -> list[dict[str, Any]]:
            out = []
            for r in await self.pool.fetch(sql, self.value):
                values = tuple(r)
                row = dict(zip(own, values[:n], strict=True))
                row[fk] = dict(zip(theirs, values[n:], strict=True))
                out.append(row)
            return out

        return run

    def prefetched(self, fk: str) -> Call:
        field: Any = self.model._meta.fields_map[fk]
        related = field.related_model
        base, column = self.base(), field.source_field
        sql = (
            f"SELECT {select_list(related, 'r')} FROM {q(related._meta.db_table)} r"
            ' WHERE r."id" = ANY($1::int[])'
        )

        async def run() -> list[dict[str, Any]]:
            rows = [dict(r) for r in await self.pool.fetch(base, self.value)]
            ids = list({row[column] for row in rows})
            found = {r["id"]: dict(r) for r in await self.pool.fetch(sql, ids)}
            for row in rows:
                row[fk] = found[row[column]]
            return rows

        return run

    def count(self) -> Call:
        sql = f"SELECT count(*) FROM {self.table} t WHERE {self.where}"

        async def run() -> int:
            count: int = await self.pool.fetchval(sql, self.value)
            return count

        return run

    def exists(self) -> Call:
        sql = f"SELECT EXISTS (SELECT FROM {self.table} t WHERE {self.where})"

        async def run() -> bool:
            return bool(await self.pool.fetchval(sql, self.value))

        return run

    def first(self) -> Call:
        sql = (
            f"SELECT {select_list(self.model, 't')} FROM {self.table} t WHERE {self.where}"
            f" ORDER BY {order_sql(self.model, 't')} LIMIT 1"
        )

        async def run() -> dict[str, Any] | None:
            row = await self.pool.fetchrow(sql, self.value)
            return None if row is None else dict(row)

        return run

    def counted(self, relation: str) -> Call:
        field: Any = self.model._meta.fields_map[relation]
        related = field.related_model
        sql = (
            f'SELECT {select_list(self.model, "t")}, count(r."id") AS n FROM {self.table} t'
            f" LEFT JOIN {q(related._meta.db_table)} r ON r.{q(field.relation_source_field)}"
            f' = t."id" WHERE {self.where} GROUP BY t."id"{self.limit}'
        )

        async def run() -> list[dict[str, Any]]:
            return [dict(r) for r in await self.pool.fetch(sql, self.value)]

        return run


# --- the shapes, generated ---------------------------------------------------------------------


async def key_values(pool: asyncpg.Pool, model: type[Model]) -> tuple[str, list[Any]]:
    """The filter key of a model and, per size, (value, rows, limit): from the data."""
    meta = model._meta
    fks = [f for f in meta.fields_map.values() if isinstance(f, ForeignKeyFieldInstance)]
    table = q(meta.db_table)
    if fks:
        column: str = fks[0].source_field  # type: ignore[assignment]
        out: list[Any] = []
        for size in SIZES:
            # The value with the fewest rows at or above the size (else the most rows), then
            # limited to the size when it has more than twice as many.
            row = await pool.fetchrow(
                f"SELECT v, n FROM (SELECT {q(column)} AS v, count(*) AS n FROM {table}"
                f" GROUP BY 1) c ORDER BY n < {size}, CASE WHEN n >= {size} THEN n ELSE -n END,"
                " v LIMIT 1"
            )
            if row is None:
                continue
            # No value with about that many rows: the largest one, limited to the size.
            limit = size if row["n"] > 2 * size else 0
            found = (row["v"], min(row["n"], size) if limit else row["n"], limit)
            if found not in out:
                out.append(found)
        return column, out
    flag = next(
        name
        for name, f in meta.fields_map.items()
        if isinstance(f, BooleanField) and name != meta.pk_attr
    )
    rows = await pool.fetch(f"SELECT {q(flag)}, count(*) FROM {table} GROUP BY 1")
    counts: dict[Any, int] = {row[0]: row[1] for row in rows}
    value = max(counts, key=lambda v: counts[v])
    out = []
    for size in SIZES:
        n = min(size, counts[value])
        if n not in [m for _, m, _ in out]:
            out.append((value, n, size if counts[value] > size else 0))
    return flag, out


def model_shapes(
    pool: asyncpg.Pool, model: type[Model], key: str, value: Any, rows: int, limit: int
) -> list[Shape]:
    meta = model._meta
    raw = Raw(pool, model, key, value, limit)
    filter_key = key

    def query() -> Any:
        qs = model.filter(**{filter_key: value})
        return qs.limit(limit) if limit else qs

    label = f"{model.__name__}.filter({filter_key}=…){f'.limit({limit})' if limit else ''}"
    when = next(n for n, f in meta.fields_map.items() if isinstance(f, DatetimeField))
    shapes = [
        Shape(label, rows, raw.rows(), query),
        Shape(
            f'{label}.order_by("{when}")',
            rows,
            raw.rows(((when, Order.asc),)),
            lambda: query().order_by(when),
        ),
        Shape(f"{label}.values()", rows, raw.rows(), lambda: query().values()),
        Shape(f"{label}.values_list()", rows, raw.tuples(), lambda: query().values_list()),
    ]
    for fk in sorted(meta.fk_fields):
        shapes.append(
            Shape(
                f'{label}.select_related("{fk}")',
                rows,
                raw.joined(fk),
                then(query, "select_related", fk),
            )
        )
        shapes.append(
            Shape(
                f'{label}.prefetch_related("{fk}")',
                rows,
                raw.prefetched(fk),
                then(query, "prefetch_related", fk),
            )
        )
    for relation in sorted(meta.backward_fk_fields):
        shapes.append(
            Shape(
                f'{label}.annotate(n=Count("{relation}"))',
                rows,
                raw.counted(relation),
                then(query, "annotate", Count(relation)),
            )
        )
    if not limit:  # the whole filter: what a count, an existence test or a first row reads
        shapes += [
            Shape(f"{label}.count()", rows, raw.count(), lambda: query().count()),
            Shape(f"{label}.exists()", rows, raw.exists(), lambda: query().exists()),
            Shape(f"{label}.first()", 1, raw.first(), lambda: query().first()),
        ]
    for shape in shapes:
        shape.sql = shape.package().sql()  # type: ignore[attr-defined]
    return shapes


def get_shape(pool: asyncpg.Pool, model: type[Model], pk: Any) -> Shape:
    """`Model.get(pk=…)` against a fetch by primary key that checks there is exactly one."""
    meta = model._meta
    sql = (
        f"SELECT {select_list(model, 't')} FROM {q(meta.db_table)} t"
        f" WHERE t.{q(meta.db_pk_column)} = $1"
    )

    async def raw() -> dict[str, Any]:
        rows = await pool.fetch(sql, pk)
        if len(rows) != 1:
            raise LookupError(f"{len(rows)} rows")
        return dict(rows[0])

    shape = Shape(f"{model.__name__}.get(pk=…)", 1, raw, lambda: model.get(pk=pk))
    shape.sql = model.filter(pk=pk).sql()
    return shape


def then(query: Callable[[], Any], method: str, argument: Any) -> Call:
    """query().<method>(argument); an annotation is named n."""
    if method == "annotate":
        return lambda: query().annotate(n=argument)
    return lambda: getattr(query(), method)(argument)


async def generated(pool: asyncpg.Pool) -> list[Shape]:
    shapes: list[Shape] = []
    for model in MODELS:
        key, values = await key_values(pool, model)
        for value, rows, limit in values:
            shapes += model_shapes(pool, model, key, value, rows, limit)
        table, pk = q(model._meta.db_table), q(model._meta.db_pk_column)
        middle = await pool.fetchval(
            f"SELECT {pk} FROM {table} ORDER BY {pk}"
            f" OFFSET (SELECT count(*) / 2 FROM {table}) LIMIT 1"
        )
        shapes.append(get_shape(pool, model, middle))
    return shapes


# --- the package's functions -------------------------------------------------------------------

MESSAGE = 'SELECT "id", "session_id", "role", "content", "timestamp", "audio_url", "metadata"'
FIRST_PAGE = f"{MESSAGE} FROM message WHERE session_id = $1 ORDER BY timestamp, id LIMIT $2"
NEXT_PAGE = (
    f"{MESSAGE} FROM message WHERE session_id = $1 AND (timestamp, id) > ($2, $3)"
    " ORDER BY timestamp, id LIMIT $4"
)
HISTORY_USER = (
    'SELECT "id", "email", "username", "is_staff", "role", "created_at", "updated_at"'
    ' FROM "user" WHERE "id" = $1'
)
HISTORY_SESSIONS = (
    'SELECT s."id", s."user_id", s."status", s."started_at", s."ended_at", s."total_messages",'
    ' s."duration_seconds", s."scenario_version_id", ' + select_list(Scenario, "c") + ""
    ' FROM "conversation_session" s JOIN "scenario" c ON c."id" = s."scenario_id"'
    ' WHERE s."user_id" = $1 ORDER BY s."started_at" DESC, s."id" DESC LIMIT $2'
)
HISTORY_MESSAGES = (
    f'SELECT m.* FROM unnest($1::int[]) AS s(id), LATERAL ({MESSAGE} FROM "message"'
    ' WHERE "session_id" = s.id ORDER BY "timestamp", "id" LIMIT $2) m'
)


def raw_history(pool: asyncpg.Pool, user: int) -> Call:
    """User, sessions with their scenario (a join), their first messages (one lateral query)."""
    scenario_columns = columns(Scenario)

    async def run() -> dict[str, Any]:
        async with pool.acquire() as conn:
            found = await conn.fetchrow(HISTORY_USER, user)
            assert found is not None
            doc = dict(found)
            sessions, by_id = [], {}
            for r in await conn.fetch(HISTORY_SESSIONS, user, MAX_HISTORY_SESSIONS):
                values = tuple(r)
                session = dict(zip(list(r.keys())[:8], values[:8], strict=True))
                session["scenario"] = dict(zip(scenario_columns, values[8:], strict=True))
                session["messages"] = []
                sessions.append(session)
                by_id[session["id"]] = session
            for m in await conn.fetch(HISTORY_MESSAGES, list(by_id), MAX_HISTORY_MESSAGES):
                by_id[m["session_id"]]["messages"].append(dict(m))
        doc["sessions"] = sessions
        return doc

    return run


def raw_walk(pool: asyncpg.Pool, session: int) -> Call:
    async def run() -> int:
        rows = [dict(r) for r in await pool.fetch(FIRST_PAGE, session, 50)]
        pages = 0
        while rows:
            pages += 1
            last = rows[-1]
            rows = [
                dict(r)
                for r in await pool.fetch(NEXT_PAGE, session, last["timestamp"], last["id"], 50)
            ]
        return pages

    return run


def package_walk(session: int) -> Call:
    async def run() -> int:
        page = await transcript(session, limit=50)
        pages = 0
        while page:
            pages += 1
            page = await transcript(session, after=page[-1], limit=50)
        return pages

    return run


async def functions(pool: asyncpg.Pool) -> list[Shape]:
    session = await pool.fetchval(
        "SELECT id FROM conversation_session ORDER BY abs(total_messages - 2000), id LIMIT 1"
    )
    total = await pool.fetchval("SELECT count(*) FROM message WHERE session_id = $1", session)
    user = await pool.fetchval(
        "SELECT user_id FROM conversation_session GROUP BY 1"
        f" HAVING count(*) >= {MAX_HISTORY_SESSIONS} ORDER BY count(*), 1 LIMIT 1"
    )
    return [
        Shape(
            f"transcript(), pages of 50 over {total:,} messages",
            total,
            raw_walk(pool, session),
            package_walk(session),
            target=0.85,
        ),
        Shape(
            f"user_history(), {MAX_HISTORY_SESSIONS} sessions, first"
            f" {MAX_HISTORY_MESSAGES} messages each",
            0,
            raw_history(pool, user),
            lambda: user_history(user),
            target=0.85,
        ),
    ]


ADD = (
    'INSERT INTO "message" ("session_id", "role", "content", "metadata")'
    ' SELECT "id", $2, $3, $4::jsonb FROM "conversation_session"'
    ' WHERE "id" = $1 AND "status" = \'active\' RETURNING "id", "timestamp"'
)
METADATA = {"model": "claude-sonnet-4-5", "tokens_in": 48, "tokens_out": 112, "latency_ms": 812}


async def writes(pool: asyncpg.Pool) -> list[Shape]:
    """add_message by 1 and 8 concurrent writers, each to its own active session."""
    sessions = await _sessions(pool)
    out = []
    for writers in (1, 8):

        def raw(writers: int = writers) -> Call:
            async def one(session: int) -> None:
                for i in range(20):
                    # The metadata arrives as a dict, as add_message's does: encoded per call,
                    # by the fastest encoder in the dependencies (before 2026-12-06 it was
                    # encoded once, outside the timing, which flattered the raw side).
                    metadata = to_json(METADATA).decode()
                    await pool.fetch(ADD, session, "partner", f"raw {i}", metadata)

            return lambda: asyncio.gather(*(one(s) for s in sessions[:writers]))

        def package(writers: int = writers) -> Call:
            async def one(session: int) -> None:
                for i in range(20):
                    await add_message(session, "partner", f"package {i}", METADATA)

            return lambda: asyncio.gather(*(one(s) for s in sessions[:writers]))

        out.append(
            Shape(f"add_message(), {writers} writer(s)", writers * 20, raw(), package(), target=0.9)
        )
    return out


async def ensure_long_session(pool: asyncpg.Pool) -> None:
    """A session of 2,000 messages, as a long conversation has (the demo seed's are <= 71):
    written into the --write-db copy, seed-like, one millisecond apart."""
    if await pool.fetchval("SELECT max(total_messages) FROM conversation_session") >= 2000:
        return
    (session,) = await _sessions(pool, 1)
    await pool.execute(
        "INSERT INTO message (session_id, role, content, timestamp, metadata)"
        " SELECT $1, (ARRAY['user', 'partner', 'coach'])[1 + i % 3],"
        " 'Message ' || i || ': I hear that you are frustrated, and I want to understand why.',"
        " now() + i * interval '1 millisecond', CASE WHEN i % 3 = 0 THEN '{}'::jsonb"
        " ELSE $2::jsonb END FROM generate_series(1, 2000) AS i",
        session,
        json.dumps(METADATA),
    )
    await pool.execute("ANALYZE message")


async def _sessions(pool: asyncpg.Pool, n: int = 8) -> list[int]:
    user = await pool.fetchval('SELECT min(id) FROM "user"')
    scenario = await pool.fetchval("SELECT min(id) FROM scenario WHERE is_active")
    return [
        r["id"]
        for r in await pool.fetch(
            "INSERT INTO conversation_session (user_id, scenario_id)"
            " SELECT $1, $2 FROM generate_series(1, $3) RETURNING id",
            user,
            scenario,
            n,
        )
    ]


# --- running ----------------------------------------------------------------------------------


async def timed(call: Call, times: int) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) per call."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(times):
        await call()
    return (time.perf_counter() - started) / times, (time.process_time() - cpu) / times


async def measure(shape: Shape, pairs: int) -> tuple[list[float], list[float]]:
    """Per pair: raw wall time / package wall time, and the same for client CPU time."""
    await shape.raw()  # warm the statement caches of both pools
    await shape.package()
    once, _ = await timed(shape.raw, 3)
    times = max(1, min(500, int(0.04 / max(once, 1e-6))))
    ratios, cpu_ratios = [], []
    for pair in range(pairs):
        if pair % 2:
            package = await timed(shape.package, times)
            raw = await timed(shape.raw, times)
        else:
            raw = await timed(shape.raw, times)
            package = await timed(shape.package, times)
        ratios.append(raw[0] / package[0])
        cpu_ratios.append(raw[1] / package[1] if package[1] else 1.0)
    return ratios, cpu_ratios


async def explain(pool: asyncpg.Pool, shape: Shape) -> str:
    plan = await pool.fetch("EXPLAIN (ANALYZE, BUFFERS) " + shape.sql)
    return "\n".join(f"    {r[0]}" for r in plan)


async def json_codec(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=str, decoder=from_json)


async def no_reset(conn: asyncpg.Connection) -> None:
    """The raw pool's reset: nothing beyond what asyncpg always does on release (roll back an
    open transaction, drop listeners), as the package's pool (DB_POOL_RESET=light). asyncpg's
    default reset sends RESET ALL, UNLISTEN *, CLOSE ALL and pg_advisory_unlock_all() as one
    more round trip per query (~100 µs here); the raw side sets no session state, so a careful
    engineer skips it. Before 2026-12-06 the raw side paid it, which flattered the package."""


async def run(args: argparse.Namespace) -> list[str]:
    await coach_db.init_db(args.db, check=False)
    pool = await asyncpg.create_pool(
        args.db, min_size=POOL, max_size=POOL, init=json_codec, reset=no_reset
    )
    lines = []
    try:
        if args.writes:
            await ensure_long_session(pool)
        shapes = await generated(pool) + await functions(pool)
        if args.writes:
            shapes += await writes(pool)
        for shape in shapes:
            if args.only and args.only not in f"{shape.name}, {shape.rows} rows":
                continue
            ratios, cpu = await measure(shape, args.pairs)
            median = statistics.median(ratios)
            verdict = "meets" if median >= shape.target else "BELOW"
            line = (
                f"| {shape.name} | {shape.rows:,} | {median:.2f} [{min(ratios):.2f}-"
                f"{max(ratios):.2f}] | ≥ {shape.target} | {verdict} |"
                f" {statistics.median(cpu):.2f} |"
            )
            print(line, flush=True)
            lines.append(line)
            if args.explain and shape.sql:
                lines.append("\n".join(["```", shape.sql, await explain(pool, shape), "```"]))
    finally:
        await pool.close()
        await coach_db.close_db()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the database to read (not changed)")
    parser.add_argument(
        "--writes",
        action="store_true",
        help="--db is a scratch copy: add a 2,000-message session, measure add_message",
    )
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument(
        "--only", help='only the shapes whose "name, N rows" contains this (", 2000 rows")'
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE Tortoise's SQL")
    args = parser.parse_args()
    load = os.getloadavg()
    started = datetime.now(UTC)
    lines = asyncio.run(run(args))
    commit = subprocess.run(
        ["git", "log", "-1", "--format=%h"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    end = os.getloadavg()
    text = "\n".join(
        [
            f"coach-db query shapes vs careful raw asyncpg, {started:%Y-%m-%d %H:%M} UTC,"
            f" commit {commit}, database {args.db.rsplit('/', 1)[-1]}",
            f"command: uv run python bench/shapes.py {' '.join(sys.argv[1:])}",
            f"{os.cpu_count()} cores; load average (1/5/15 min)"
            f" {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the start,"
            f" {end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f} at the end",
            f"figure = raw time / package time (1.00: as fast as raw asyncpg), median [min-max]"
            f" of {args.pairs} interleaved pairs",
            "",
            "| shape | rows | raw / package (wall) | target | | client CPU, raw / package |",
            "|---|---|---|---|---|---|",
            *lines,
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
