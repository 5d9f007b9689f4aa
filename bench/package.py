"""The package's read and write paths against raw asyncpg running the same SQL (not run by tests).

    uv run --group bench python bench/package.py [--reps 9] [--out bench/results/package.txt]
        [--png bench/results/package.png] [--only SUBSTRING]

Creates a throw-away database on the server (built by `coach-db deploy`), fills it, checks
once that every contender returns the same data as raw asyncpg, then runs each workload for
both in interleaved repetitions (the order alternating), so that drift of this shared machine
hits both alike. Prints the median rate, the ratio package / raw, and the peak of Python
memory allocated during one run of each (tracemalloc, measured apart from the timed runs);
--png also draws the ratios (matplotlib, in the `bench` dependency group).
Both sides use a pool of 10 connections, coach_db's default.

What raw asyncpg does: for idiomatic Tortoise queries, fetch the records. For `Message.filter`
three ways: with `metadata` decoded as it arrives by asyncpg's documented jsonb codec with
json.loads (the values the ORM gives, as a service reading messages needs them: the target's
row), the same with pydantic-core's faster decoder, and with `metadata` left as JSON text
(bare records: a lower bound that no code building an object per row reaches at 2,000 rows).
For the package's functions, what a hand-written service would do to return the same typed
results: `transcript` validates its rows into `MessageRead`s with pydantic (metadata
decoded), `user_history` validates the package's JSON query into `UserWithSessions`, the
writes only send their statement. One more row gives `transcript` against bare records.
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
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import TypeAdapter
from pydantic_core import from_json
from scratch import add_server_option, migrated_database  # bench/scratch.py

import coach_db
from coach_db import (
    Message,
    Scenario,
    User,
    add_message,
    end_session,
    start_session,
    transcript,
    user_history,
)
from coach_db.conversations import _history_rows
from coach_db.types import MessageRead, UserWithSessions

ROOT = Path(__file__).resolve().parent.parent
POOL = 10
METADATA = {"model": "claude-sonnet-4-5", "tokens_in": 48, "tokens_out": 112, "latency_ms": 812}
SCENARIO_COLUMNS = (
    "id, name, slug, description, partner_persona, partner_system_prompt, coach_system_prompt,"
    " partner_model, coach_model, is_active, created_at, updated_at"
)
MESSAGE_COLUMNS = "id, session_id, role, content, timestamp, audio_url, metadata"
SQL = {
    "scenarios": f"SELECT {SCENARIO_COLUMNS} FROM scenario WHERE is_active ORDER BY name",
    "messages": f"SELECT {MESSAGE_COLUMNS} FROM message WHERE session_id = $1 ORDER BY timestamp",
    "first_page": f"SELECT {MESSAGE_COLUMNS} FROM message WHERE session_id = $1"
    " ORDER BY timestamp, id LIMIT $2",
    "next_page": f"SELECT {MESSAGE_COLUMNS} FROM message WHERE session_id = $1"
    " AND (timestamp, id) > ($2, $3) ORDER BY timestamp, id LIMIT $4",
    "add_message": "INSERT INTO message (session_id, role, content, metadata)"
    " SELECT id, $2, $3, $4::jsonb FROM conversation_session WHERE id = $1 AND status = 'active'"
    " RETURNING id, timestamp",
    "start_session": "INSERT INTO conversation_session (user_id, scenario_id)"
    " SELECT $1, id FROM scenario WHERE id = $2 AND is_active RETURNING *",
    "end_session": "UPDATE conversation_session SET status = $2"
    " WHERE id = $1 AND status = 'active' RETURNING *",
}
Run = Callable[[], Awaitable[int]]  # does the work, returns the number of operations
Sample = Callable[[], Awaitable[Any]]  # one call, returning comparable data


@dataclass
class Workload:
    name: str
    unit: str
    raw: Run
    package: Run
    # For the equality check: one call each, returning the same plain data when correct.
    raw_sample: Sample | None = None
    package_sample: Sample | None = None
    # The ratio issue 10 asks for: 0.6 for idiomatic Tortoise, 0.9 for the package's functions.
    target: float | None = None


@dataclass
class Outcome:
    raw: list[float]
    package: list[float]
    # This process's CPU seconds per operation: what load on a shared machine hardly changes.
    raw_cpu: list[float] = field(default_factory=list)
    package_cpu: list[float] = field(default_factory=list)
    raw_peak: int = 0
    package_peak: int = 0


# --- plain data for the equality checks -------------------------------------------------------


def scenario_rows(objs: list[Scenario]) -> list[tuple[Any, ...]]:
    names = [name.strip() for name in SCENARIO_COLUMNS.split(",")]
    return [tuple(getattr(obj, name) for name in names) for obj in objs]


def message_rows(objs: list[Message]) -> list[tuple[Any, ...]]:
    return [
        (m.id, m.session_id, m.role.value, m.content, m.timestamp, m.audio_url, m.metadata)
        for m in objs
    ]


MESSAGE_PAGE = TypeAdapter(list[MessageRead])


def message_reads(records: list[asyncpg.Record]) -> list[MessageRead]:
    """What a hand-written service returns for message rows: validated MessageReads."""
    return MESSAGE_PAGE.validate_python(
        [{**record, "metadata": from_json(record["metadata"])} for record in records]
    )


async def decode_jsonb(connection: asyncpg.Connection) -> None:
    """asyncpg's documented recipe for JSON columns: a hand-written service reading messages
    has metadata decoded as it arrives, as the ORM does (set_type_codec, json.loads)."""
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads
    )


async def decode_jsonb_fast(connection: asyncpg.Connection) -> None:
    """The same codec with pydantic-core's decoder, the one the ORM's JSONField uses."""
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=json.dumps, decoder=from_json
    )


def record_rows(records: list[asyncpg.Record]) -> list[tuple[Any, ...]]:
    """Raw records as plain tuples, with JSON text decoded, for comparison only."""
    return [
        tuple(
            json.loads(v) if k == "metadata" and isinstance(v, str) else v
            for k, v in record.items()
        )
        for record in records
    ]


# --- workloads --------------------------------------------------------------------------------


def repeat(times: int, call: Callable[[], Awaitable[Any]]) -> Run:
    async def run() -> int:
        for _ in range(times):
            await call()
        return times

    return run


def appends(times: int, concurrency: int, call: Callable[[int, int], Awaitable[Any]]) -> Run:
    async def run() -> int:
        async def worker(w: int) -> None:
            for i in range(times // concurrency):
                await call(w, i)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return times // concurrency * concurrency

    return run


def walk_raw(pool: asyncpg.Pool, session: int, walks: int, typed: bool = True) -> Run:
    async def run() -> int:
        pages = 0
        for _ in range(walks):
            records = await pool.fetch(SQL["first_page"], session, 50)
            while records:
                pages += 1
                if typed:
                    last = message_reads(records)[-1]
                    cursor = (last.timestamp, last.id)
                else:
                    cursor = (records[-1][4], records[-1][0])
                records = await pool.fetch(SQL["next_page"], session, *cursor, 50)
        return pages

    return run


def walk_package(session: int, walks: int) -> Run:
    async def run() -> int:
        pages = 0
        for _ in range(walks):
            page = await transcript(session, limit=50)
            while page:
                pages += 1
                page = await transcript(session, after=page[-1], limit=50)
        return pages

    return run


async def walked_raw(pool: asyncpg.Pool, session: int) -> list[dict[str, Any]]:
    rows: list[MessageRead] = []
    page = message_reads(await pool.fetch(SQL["first_page"], session, 50))
    while page:
        rows += page
        cursor = (page[-1].timestamp, page[-1].id)
        page = message_reads(await pool.fetch(SQL["next_page"], session, *cursor, 50))
    return [row.model_dump() for row in rows]


async def walked_package(session: int) -> list[dict[str, Any]]:
    rows: list[MessageRead] = []
    page = await transcript(session, limit=50)
    while page:
        rows += page
        page = await transcript(session, after=page[-1], limit=50)
    return [row.model_dump() for row in rows]


async def fill_messages(pool: asyncpg.Pool, session: int, n: int) -> None:
    """n messages like the seed's: alternating roles, model metadata, a millisecond apart."""
    await pool.execute(
        "INSERT INTO message (session_id, role, content, timestamp, metadata)"
        " SELECT $1, (ARRAY['user', 'partner', 'coach'])[1 + i % 3],"
        " 'Message ' || i || ': I hear that you are frustrated, and I want to understand why.',"
        " timestamp '2026-01-01' + i * interval '1 millisecond',"
        " CASE WHEN i % 3 = 0 THEN '{}'::jsonb ELSE $3::jsonb END"
        " FROM generate_series(1, $2) AS i",
        session,
        n,
        json.dumps(METADATA),
    )


async def workloads(
    pool: asyncpg.Pool, decoded: asyncpg.Pool, fast: asyncpg.Pool
) -> list[Workload]:
    tag = uuid.uuid4().hex[:8]
    user = await User.create(email=f"bench-{tag}@example.com", username="Bench")
    scenarios = [
        await Scenario.create(
            name=f"Scenario {i:02d}",
            slug=f"bench-{tag}-{i}",
            description="A hard conversation to practise. " * 4,
            partner_persona="An uncle who has opinions.",
            partner_system_prompt="You play the partner. " * 60,  # prompts are long: ~1.3 KB
            coach_system_prompt="You are the coach. " * 60,
            partner_model="claude-sonnet-4-5",
            coach_model="claude-haiku-4-5",
            is_active=i < 2,
        )
        for i in range(50)
    ]
    scenario = scenarios[0]
    short_session = await start_session(user, scenario)
    long_session = await start_session(user, scenario)
    await fill_messages(pool, int(short_session.id), 50)
    await fill_messages(pool, int(long_session.id), 2000)
    reader = await User.create(email=f"reader-{tag}@example.com", username="Reader")
    for _ in range(20):
        session = await start_session(reader, scenario)
        await fill_messages(pool, int(session.id), 50)
    metadata_json = json.dumps(METADATA)

    async def raw_scenarios() -> list[tuple[Any, ...]]:
        return record_rows(await pool.fetch(SQL["scenarios"]))

    async def package_scenarios() -> list[tuple[Any, ...]]:
        return scenario_rows(await Scenario.filter(is_active=True))

    def raw_messages(session: int, source: asyncpg.Pool = pool) -> Sample:
        async def sample() -> list[tuple[Any, ...]]:
            return record_rows(await source.fetch(SQL["messages"], session))

        return sample

    def package_messages(session: int) -> Sample:
        async def sample() -> list[tuple[Any, ...]]:
            return message_rows(await Message.filter(session_id=session).order_by("timestamp"))

        return sample

    async def raw_user_history() -> UserWithSessions:
        # The package's own statements and validation, on a plain asyncpg connection.
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            doc = await _history_rows(conn, reader.id, None)
        assert doc is not None
        doc.pop("cursor_found")
        return UserWithSessions.model_validate(doc)

    async def raw_history() -> Any:
        return (await raw_user_history()).model_dump()

    async def package_history() -> Any:
        return (await user_history(reader.id)).model_dump()

    append_sessions: dict[str, list[int]] = {}

    async def fresh_sessions(key: str, n: int) -> list[int]:
        ids = [int((await start_session(user, scenario)).id) for _ in range(n)]
        append_sessions[key] = ids
        return ids

    raw_c1, pkg_c1 = await fresh_sessions("raw1", 1), await fresh_sessions("pkg1", 1)
    raw_c16, pkg_c16 = await fresh_sessions("raw16", 8), await fresh_sessions("pkg16", 8)

    def raw_append(sessions: list[int]) -> Callable[[int, int], Awaitable[Any]]:
        async def call(w: int, i: int) -> Any:
            return await pool.fetch(
                SQL["add_message"], sessions[w % len(sessions)], "partner", f"r{i}", metadata_json
            )

        return call

    def package_append(sessions: list[int]) -> Callable[[int, int], Awaitable[Any]]:
        async def call(w: int, i: int) -> Any:
            return await add_message(sessions[w % len(sessions)], "partner", f"r{i}", METADATA)

        return call

    # end_session needs active sessions: each run ends sessions that the previous one started.
    async def raw_start_end() -> int:
        for _ in range(100):
            row = await pool.fetchrow(SQL["start_session"], user.id, scenario.id)
            assert row is not None
            await pool.fetchrow(SQL["end_session"], row["id"], "completed")
        return 100

    async def package_start_end() -> int:
        for _ in range(100):
            session = await start_session(user, scenario)
            await end_session(session, "completed")
        return 100

    async def activate_all() -> int:
        await pool.execute("UPDATE scenario SET is_active = true")
        return 0

    return [
        Workload(
            "Scenario.filter(is_active=True), 2 rows",
            "queries",
            repeat(500, lambda: pool.fetch(SQL["scenarios"])),
            repeat(500, lambda: Scenario.filter(is_active=True)),
            raw_scenarios,
            package_scenarios,
            target=0.6,
        ),
        Workload("(then 48 more scenarios are activated)", "", activate_all, activate_all),
        Workload(
            "Scenario.filter(is_active=True), 50 rows",
            "queries",
            repeat(100, lambda: pool.fetch(SQL["scenarios"])),
            repeat(100, lambda: Scenario.filter(is_active=True)),
            raw_scenarios,
            package_scenarios,
            target=0.6,
        ),
        *message_filters(
            "50 rows",
            200,
            short_session.id,
            pool,
            decoded,
            fast,
            raw_messages,
            package_messages,
        ),
        *message_filters(
            "2,000 rows",
            10,
            long_session.id,
            pool,
            decoded,
            fast,
            raw_messages,
            package_messages,
        ),
        Workload(
            "transcript(), pages of 50 over 2,000 messages",
            "pages",
            walk_raw(pool, int(long_session.id), 3),
            walk_package(int(long_session.id), 3),
            lambda: walked_raw(pool, int(long_session.id)),
            lambda: walked_package(int(long_session.id)),
            target=0.9,
        ),
        Workload(
            "transcript() vs bare records (raw builds no typed results)",
            "pages",
            walk_raw(pool, int(long_session.id), 3, typed=False),
            walk_package(int(long_session.id), 3),
        ),
        Workload(
            "user_history(), 20 sessions x 50 messages",
            "calls",
            repeat(20, raw_user_history),
            repeat(20, lambda: user_history(reader.id)),
            raw_history,
            package_history,
            target=0.9,
        ),
        Workload(
            "add_message(), c=1",
            "messages",
            appends(1000, 1, raw_append(raw_c1)),
            appends(1000, 1, package_append(pkg_c1)),
            target=0.9,
        ),
        Workload(
            "add_message(), c=16 over 8 sessions",
            "messages",
            appends(2000, 16, raw_append(raw_c16)),
            appends(2000, 16, package_append(pkg_c16)),
            target=0.9,
        ),
        Workload(
            "start_session() + end_session()",
            "sessions",
            raw_start_end,
            package_start_end,
            target=0.9,
        ),
    ]


def message_filters(
    rows: str,
    times: int,
    session: int,
    pool: asyncpg.Pool,
    decoded: asyncpg.Pool,
    fast: asyncpg.Pool,
    raw_messages: Callable[[int, asyncpg.Pool], Sample],
    package_messages: Callable[[int], Sample],
) -> list[Workload]:
    """`Message.filter(...)` against a service reading the same values (metadata decoded by
    asyncpg's documented jsonb codec with json.loads, or with pydantic-core's faster decoder),
    and against bare records (metadata left as text: a lower bound)."""
    query = 'Message.filter(session_id=…).order_by("timestamp")'
    package = repeat(times, lambda: Message.filter(session_id=session).order_by("timestamp"))
    return [
        Workload(
            f"{query}, {rows}",
            "queries",
            repeat(times, lambda: decoded.fetch(SQL["messages"], session)),
            package,
            raw_messages(session, decoded),
            package_messages(session),
            target=0.6,
        ),
        Workload(
            f"{query}, {rows}, vs records decoded by pydantic-core",
            "queries",
            repeat(times, lambda: fast.fetch(SQL["messages"], session)),
            package,
            raw_messages(session, fast),
            package_messages(session),
        ),
        Workload(
            f"{query}, {rows}, vs bare records (metadata not decoded)",
            "queries",
            repeat(times, lambda: pool.fetch(SQL["messages"], session)),
            package,
            raw_messages(session, pool),
            package_messages(session),
        ),
    ]


# --- running ----------------------------------------------------------------------------------


async def rate(run: Run) -> tuple[float, float]:
    """(operations per second, CPU seconds of this process per operation)."""
    started, cpu = time.perf_counter(), time.process_time()
    done = await run()
    return done / (time.perf_counter() - started), (time.process_time() - cpu) / done


async def peak(run: Run) -> int:
    tracemalloc.start()
    try:
        await run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def bench(url: str, reps: int, only: str | None) -> list[tuple[Workload, Outcome]]:
    await coach_db.init_db(url)  # default pool: 10 connections
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
    decoded = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL, init=decode_jsonb)
    fast = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL, init=decode_jsonb_fast)
    assert pool is not None and decoded is not None and fast is not None
    results: list[tuple[Workload, Outcome]] = []
    try:
        for workload in await workloads(pool, decoded, fast):
            if not workload.unit:  # a step between workloads
                await workload.raw()
                continue
            if only and only not in workload.name:
                continue
            if workload.raw_sample and workload.package_sample:
                raw, package = await workload.raw_sample(), await workload.package_sample()
                if raw != package:
                    raise SystemExit(f"{workload.name}: the package returned other data than raw")
            await workload.raw()  # warm both pools and statement caches
            await workload.package()
            outcome = Outcome([], [])
            for rep in range(reps):  # interleaved, the order alternating
                order = [("raw", workload.raw), ("package", workload.package)]
                for side, run in order if rep % 2 == 0 else order[::-1]:
                    per_second, cpu = await rate(run)
                    getattr(outcome, side).append(per_second)
                    getattr(outcome, f"{side}_cpu").append(cpu)
            outcome.raw_peak = await peak(workload.raw)
            outcome.package_peak = await peak(workload.package)
            results.append((workload, outcome))
            print(f"  {workload.name}: done", file=sys.stderr, flush=True)
    finally:
        await pool.close()
        await decoded.close()
        await fast.close()
        await coach_db.close_db()
    return results


def chart(results: list[tuple[Workload, Outcome]], title: str, path: Path) -> None:
    """A bar per workload: the median ratio, min-max whiskers, its target as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(9, 0.42 * len(results) + 1.6), dpi=80)
    top = 1.2
    for row, (workload, outcome) in enumerate(results):
        y = len(results) - 1 - row
        pairs = [p / r for p, r in zip(outcome.package, outcome.raw, strict=True)]
        median = statistics.median(pairs)
        target = workload.target
        color = "#999999" if target is None else "#55a868" if median >= target else "#dd8452"
        ax.barh(y, median, color=color)
        ax.errorbar(
            median,
            y,
            xerr=[[median - min(pairs)], [max(pairs) - median]],
            fmt="none",
            ecolor="#444444",
            capsize=3,
        )
        if target is not None:
            ax.plot([target, target], [y - 0.42, y + 0.42], color="black", linestyle=":")
        ax.text(0.02, y, f"{median:.2f}", va="center", color="white", fontsize=8)
        top = max(top, max(pairs) + 0.05)
    names = [workload.name.replace(".order_by", "\n.order_by") for workload, _ in results]
    ax.set_yticks(range(len(results))[::-1], names, fontsize=8)
    ax.set_xlim(0, top)
    ax.set_xlabel("package / raw asyncpg (median of interleaved pairs; whiskers: min-max)")
    ax.legend(
        handles=[
            Patch(color="#55a868", label="meets its target (dotted)"),
            Patch(color="#dd8452", label="below its target"),
            Patch(color="#999999", label="for information"),
        ],
        fontsize=7,
        loc="lower right",
    )
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(results: list[tuple[Workload, Outcome]], reps: int) -> str:
    lines = [
        f"| workload | raw asyncpg /s | package /s | package / raw (median of {reps} pairs) "
        "| target | client CPU per op raw / package | peak Python memory raw / package |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, outcome in results:
        raw, package = statistics.median(outcome.raw), statistics.median(outcome.package)
        # Each repetition ran both sides back to back: the ratio within a pair is what load
        # spikes of a shared machine disturb least.
        pairs = [p / r for p, r in zip(outcome.package, outcome.raw, strict=True)]
        lines.append(
            f"| {workload.name} | {raw:,.0f} {workload.unit} | {package:,.0f} | "
            f"{statistics.median(pairs):.2f} [{min(pairs):.2f}-{max(pairs):.2f}] | "
            f"{'-' if workload.target is None else f'≥ {workload.target}'} | "
            f"{statistics.median(outcome.raw_cpu) * 1e6:,.0f} / "
            f"{statistics.median(outcome.package_cpu) * 1e6:,.0f} µs | "
            f"{outcome.raw_peak / 1024:,.0f} / {outcome.package_peak / 1024:,.0f} KB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    add_server_option(parser)
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--png", type=Path, help="also draw the ratios as a chart (PNG)")
    parser.add_argument("--only", help="run only the workloads whose name contains this")
    parser.add_argument(
        "--db-prefix", default="coach_bench_pkg_", help="name prefix of the throw-away database"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with migrated_database(args.server, args.db_prefix) as (url, version):
        results = asyncio.run(bench(url, args.reps, args.only))
    commit = subprocess.run(
        ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load_after = os.getloadavg()[0]
    load = f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end"
    text = "\n".join(
        [
            f"coach-db package vs raw asyncpg, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
            f" commit {commit}",
            f"PostgreSQL {version}, {os.cpu_count()} cores (shared), {load}, pools of {POOL};"
            f" ratio = median over repetitions of package rate / raw rate [min-max]",
            "",
            table(results, args.reps),
        ]
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.png:
        day = f"{datetime.now(UTC):%Y-%m-%d}"
        title = f"coach-db vs raw asyncpg, {day}, {os.cpu_count()} shared cores\n{load}"
        chart(results, title, args.png)


if __name__ == "__main__":
    main()
