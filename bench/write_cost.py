"""What the message counter, the daily rollup and the word index cost an add_message, and the
alternatives (issue 20 §4; not run by tests).

    uv run python bench/write_cost.py --db postgres://postgres@127.0.0.1:5432/i20b_10m
        [--rounds 7] [--only SUBSTRING] [--out bench/results/write-cost-10m.txt]

--db must be a scratch copy (CREATE DATABASE x TEMPLATE coach_bench_10m): each variant changes
the triggers or the index of `message` for its run and puts them back after it, and every run
adds messages to new active sessions. Variants, measured in rounds that cycle through them all
(so load drifts of the shared machine spread over every variant):

- as deployed: statement-level counter and rollup triggers (transition tables), GIN index;
- without the counter and rollup triggers, without the rollup trigger alone, or without the
  word index: what they cost (not options: the counts would be wrong, or search slow; the
  index is dropped and rebuilt only on tables under a million messages);
- one statement-level trigger doing both (one transition table, one trigger call);
- row-level triggers doing both per row (no transition table);
- the GIN index with fastupdate off, or with a 256 kB pending list.

Each run: add_message's INSERT … SELECT 200 times under EXPLAIN ANALYZE (its execution time in
the server, triggers included: the figure that the load of this shared machine disturbs
least, as no client or round trip is in it), by 1 writer (300 messages, each committed: what a
caller waits for, mostly the WAL flush of the commit on this machine), the same 300 in one
transaction (the statements' own work, no commit wait: where triggers and index show), by 8
concurrent writers (8 x 60), and one INSERT … SELECT of 5,000 messages (a bulk import). The
figure is µs per message, median [min-max] of the rounds; p99 of the single inserts too (GIN
pending-list flushes land on one unlucky insert).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
ADD = (
    'INSERT INTO "message" ("session_id", "role", "content", "metadata")'
    ' SELECT "id", $2, $3, $4::jsonb FROM "conversation_session"'
    ' WHERE "id" = $1 AND "status" = \'active\' RETURNING "id", "timestamp"'
)
METADATA = '{"model":"claude-sonnet-4-5","tokens_in":48,"tokens_out":112,"latency_ms":812}'
CONTENT = "I hear that you are frustrated, and I want to understand why the plan changed."
DISABLE_BOTH = (
    'ALTER TABLE "message" DISABLE TRIGGER "message_count_inserted";'
    ' ALTER TABLE "message" DISABLE TRIGGER "message_daily_inserted";'
)
ENABLE_BOTH = (
    'ALTER TABLE "message" ENABLE TRIGGER "message_count_inserted";'
    ' ALTER TABLE "message" ENABLE TRIGGER "message_daily_inserted";'
)
DAILY_UPSERT = """
    INSERT INTO "message_daily" AS d ("day", "stripe", "messages")
    SELECT ("timestamp" AT TIME ZONE 'UTC')::date, pg_backend_pid() % 64, count(*)
    FROM new_rows GROUP BY 1 ORDER BY 1
    ON CONFLICT ("day", "stripe") DO UPDATE SET "messages" = d."messages" + excluded."messages";
"""
ROW_LEVEL = """
CREATE FUNCTION "bench_message_row"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s record;
    backfill boolean := coalesce(current_setting('coach_db.backfill', true), '') = 'on';
BEGIN
    UPDATE "conversation_session" SET "total_messages" = "total_messages" + 1
        WHERE "id" = NEW."session_id" RETURNING "id", "status", "ended_at" INTO s;
    IF s."status" <> 'active' AND (NEW."timestamp" > s."ended_at" OR NOT backfill) THEN
        RAISE EXCEPTION 'Session % is %', s."id", s."status"
            USING ERRCODE = 'check_violation', CONSTRAINT = 'message_not_after_session_end';
    END IF;
    INSERT INTO "message_daily" AS d ("day", "stripe", "messages")
    VALUES ((NEW."timestamp" AT TIME ZONE 'UTC')::date, pg_backend_pid() % 64, 1)
    ON CONFLICT ("day", "stripe") DO UPDATE SET "messages" = d."messages" + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER "bench_message_row" AFTER INSERT ON "message"
    FOR EACH ROW EXECUTE FUNCTION "bench_message_row"();
"""


@dataclass
class Variant:
    name: str
    apply: str
    revert: str
    single: list[float] = field(default_factory=list)  # µs per message, per round
    in_transaction: list[float] = field(default_factory=list)
    # In the server, per INSERT (EXPLAIN ANALYZE's execution time, triggers included): the
    # median and the minimum of each round; the minimum is what load can only add to.
    server: list[float] = field(default_factory=list)
    server_min: list[float] = field(default_factory=list)
    eight: list[float] = field(default_factory=list)
    bulk: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)


async def combined_sql(conn: asyncpg.Connection) -> tuple[str, str]:
    """The counter trigger's own function with the rollup's upsert added before it returns."""
    body = await conn.fetchval(
        "SELECT prosrc FROM pg_proc WHERE proname = 'message_count_inserted'"
    )
    head, tail = body.rsplit("RETURN NULL;", 1)
    function = (
        'CREATE FUNCTION "bench_message_combined"() RETURNS trigger LANGUAGE plpgsql AS $body$'
        + head
        + DAILY_UPSERT
        + "RETURN NULL;"
        + tail
        + "$body$;"
    )
    apply = (
        DISABLE_BOTH
        + function
        + ' CREATE TRIGGER "bench_message_combined" AFTER INSERT ON "message"'
        " REFERENCING NEW TABLE AS new_rows"
        ' FOR EACH STATEMENT EXECUTE FUNCTION "bench_message_combined"();'
    )
    revert = (
        'DROP TRIGGER "bench_message_combined" ON "message";'
        ' DROP FUNCTION "bench_message_combined"();' + ENABLE_BOTH
    )
    return apply, revert


async def variants(conn: asyncpg.Connection) -> list[Variant]:
    combined_apply, combined_revert = await combined_sql(conn)
    index = '"message_content_words"'
    # Rebuilding the word index after each of its runs takes minutes at 10M messages (and two
    # cores from everyone else): its share is measured on smaller tables only.
    rows = await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'message'")
    small = rows < 1_000_000
    return [
        Variant("as deployed (statement-level triggers, GIN fastupdate on, 4 MB list)", "", ""),
        Variant(
            "no counter and rollup triggers (their cost; not exact)", DISABLE_BOTH, ENABLE_BOTH
        ),
        Variant(
            "no rollup trigger (its cost: the most a deferred rollup could save)",
            'ALTER TABLE "message" DISABLE TRIGGER "message_daily_inserted"',
            'ALTER TABLE "message" ENABLE TRIGGER "message_daily_inserted"',
        ),
        *(
            [
                Variant(
                    "no word index (its cost; search would scan)",
                    f"ALTER INDEX {index} RENAME TO bench_gin; DROP INDEX bench_gin;",
                    f"CREATE INDEX {index} ON message USING gin (to_tsvector('simple', content));",
                )
            ]
            if small
            else []
        ),
        Variant("one statement-level trigger for both", combined_apply, combined_revert),
        Variant(
            "row-level triggers for both",
            DISABLE_BOTH + ROW_LEVEL,
            'DROP TRIGGER "bench_message_row" ON "message"; DROP FUNCTION "bench_message_row"();'
            + ENABLE_BOTH,
        ),
        Variant(
            "GIN fastupdate off",
            f"ALTER INDEX {index} SET (fastupdate = off)",
            f"ALTER INDEX {index} RESET (fastupdate)",
        ),
        Variant(
            "GIN pending list 256 kB",
            f"ALTER INDEX {index} SET (gin_pending_list_limit = 256)",
            f"ALTER INDEX {index} RESET (gin_pending_list_limit)",
        ),
    ]


async def new_sessions(pool: asyncpg.Pool, n: int) -> list[int]:
    rows = await pool.fetch(
        "INSERT INTO conversation_session (user_id, scenario_id)"
        ' SELECT (SELECT min(id) FROM "user"),'
        " (SELECT min(id) FROM scenario WHERE is_active) FROM generate_series(1, $1) RETURNING id",
        n,
    )
    return [r["id"] for r in rows]


async def writer(
    pool: asyncpg.Pool, session: int, n: int, latencies: list[float], one_transaction: bool = False
) -> None:
    async with pool.acquire() as conn:
        if one_transaction:
            async with conn.transaction():
                for i in range(n):
                    await conn.fetch(ADD, session, "partner", f"{CONTENT} {i}", METADATA)
            return
        for i in range(n):
            started = time.perf_counter()
            await conn.fetch(ADD, session, "partner", f"{CONTENT} {i}", METADATA)
            latencies.append(time.perf_counter() - started)


async def measure(pool: asyncpg.Pool, variant: Variant) -> None:
    (one,) = await new_sessions(pool, 1)
    latencies: list[float] = []
    started = time.perf_counter()
    await writer(pool, one, 300, latencies)
    variant.single.append((time.perf_counter() - started) / 300 * 1e6)
    variant.p99.append(sorted(latencies)[int(len(latencies) * 0.99)] * 1e6)
    (two,) = await new_sessions(pool, 1)
    started = time.perf_counter()
    await writer(pool, two, 300, [], one_transaction=True)
    variant.in_transaction.append((time.perf_counter() - started) / 300 * 1e6)
    (three,) = await new_sessions(pool, 1)
    times = []
    async with pool.acquire() as conn:
        for i in range(200):
            args = (three, "partner", f"{CONTENT} {i}", METADATA)
            plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + ADD, *args)
            times.append(json.loads(plan)[0]["Execution Time"] * 1000)
    variant.server.append(statistics.median(times))
    variant.server_min.append(min(times))
    eight = await new_sessions(pool, 8)
    started = time.perf_counter()
    await asyncio.gather(*(writer(pool, s, 60, []) for s in eight))
    variant.eight.append((time.perf_counter() - started) / 480 * 1e6)
    (bulk,) = await new_sessions(pool, 1)
    started = time.perf_counter()
    await pool.execute(
        "INSERT INTO message (session_id, role, content, metadata)"
        " SELECT $1, 'user', $2 || i, $3::jsonb FROM generate_series(1, 5000) i",
        bulk,
        CONTENT,
        METADATA,
    )
    variant.bulk.append((time.perf_counter() - started) / 5000 * 1e6)


def cell(values: list[float], base: list[float] | None = None) -> str:
    median = statistics.median(values)
    text = f"{median:,.0f} [{min(values):,.0f}-{max(values):,.0f}]"
    if base:
        text += f" ({median / statistics.median(base):.2f}x)"
    return text


# What an interrupted earlier run may have left: everything back as deployed.
CLEANUP = """
    DROP TRIGGER IF EXISTS "bench_message_row" ON "message";
    DROP FUNCTION IF EXISTS "bench_message_row"();
    DROP TRIGGER IF EXISTS "bench_message_combined" ON "message";
    DROP FUNCTION IF EXISTS "bench_message_combined"();
    ALTER TABLE "message" ENABLE TRIGGER "message_count_inserted";
    ALTER TABLE "message" ENABLE TRIGGER "message_daily_inserted";
    DROP INDEX IF EXISTS "bench_gin";
    CREATE INDEX IF NOT EXISTS "message_content_words" ON "message"
        USING gin (to_tsvector('simple', "content"));
    ALTER INDEX "message_content_words" RESET (fastupdate, gin_pending_list_limit);
"""


async def run(url: str, rounds: int, only: str | None) -> list[Variant]:
    pool = await asyncpg.create_pool(url, min_size=8, max_size=8)
    assert pool is not None
    await pool.execute(CLEANUP)
    try:
        measured = await variants(pool)  # type: ignore[arg-type]
        if only:  # the deployed state stays first: the baseline of every ratio
            measured = [measured[0], *(v for v in measured[1:] if only in v.name)]
        for round_ in range(rounds):
            order = measured if round_ % 2 == 0 else measured[::-1]
            for variant in order:
                if variant.apply:
                    await pool.execute(variant.apply)
                try:
                    await measure(pool, variant)
                finally:
                    if variant.revert:
                        await pool.execute(variant.revert)
            print(f"round {round_ + 1} of {rounds} done", file=sys.stderr, flush=True)
    finally:
        await pool.close()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a scratch copy: variants change it")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", help="only the variants whose name contains this")
    args = parser.parse_args()
    load = os.getloadavg()
    started = datetime.now(UTC)
    measured = asyncio.run(run(args.db, args.rounds, args.only))
    end = os.getloadavg()
    commit = subprocess.run(
        ["git", "log", "-1", "--format=%h"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    base = measured[0]
    lines = [
        f"add_message write cost by variant, {started:%Y-%m-%d %H:%M} UTC, commit {commit},"
        f" database {args.db.rsplit('/', 1)[-1]}",
        f"command: uv run python bench/write_cost.py {' '.join(sys.argv[1:])}",
        f"{os.cpu_count()} cores; load average (1/5/15 min)"
        f" {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the start,"
        f" {end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f} at the end",
        f"µs per message (wall), median [min-max] of {args.rounds} rounds; (x) = / as deployed",
        "",
        "| variant | in the server: median / min per INSERT (EXPLAIN ANALYZE) | 1 writer |"
        " 8 writers | p99 of 1 writer | 1 writer, 300 in one transaction (no commit wait)"
        " | bulk INSERT of 5,000 |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in measured:
        same = v is base
        lines.append(
            f"| {v.name} | {cell(v.server, None if same else base.server)} /"
            f" {cell(v.server_min, None if same else base.server_min)}"
            f" | {cell(v.single, None if same else base.single)}"
            f" | {cell(v.eight, None if same else base.eight)}"
            f" | {cell(v.p99, None if same else base.p99)}"
            f" | {cell(v.in_transaction, None if same else base.in_transaction)}"
            f" | {cell(v.bulk, None if same else base.bulk)} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
