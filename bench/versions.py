"""What prompt versions cost a session insert (migration 6), next to raw asyncpg (not a test).

    uv run python bench/versions.py [--reps 5] [--server postgres://postgres@127.0.0.1/postgres]

Creates a throw-away database, builds it with `aerich upgrade`, then runs, in interleaved
repetitions: `start_session` and the same INSERT by raw asyncpg with the version trigger on
(the database looks the scenario's current version up) and off (the version named in the
INSERT, as if there were no trigger: the cost before migration 6), and a COPY of session rows
as the demo seed does, trigger on and off. Prints the median [min-max] rate and the per-row
difference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

import coach_db
from coach_db import Scenario, User, start_session

ROOT = Path(__file__).resolve().parent.parent
TRIGGER = "conversation_session_scenario_version_insert"
INSERT = "INSERT INTO conversation_session (user_id, scenario_id) VALUES ($1, $2) RETURNING *"
INSERT_NAMED = (
    "INSERT INTO conversation_session (user_id, scenario_id, scenario_version_id)"
    " VALUES ($1, $2, $3) RETURNING *"
)
COPY_COLUMNS = ("user_id", "scenario_id", "scenario_version_id", "status", "started_at", "ended_at")
Run = Callable[[], Awaitable[int]]


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--inserts", type=int, default=2000)
    parser.add_argument("--copy-rows", type=int, default=50_000)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"versions_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.server, name)
    try:
        env = {**os.environ, "DATABASE_URL": url}
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "aerich", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        await run_all(url, args)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run_all(url: str, args: argparse.Namespace) -> None:
    async with coach_db.connect(url):
        user = await User.create(email="bench@example.com", username="Bench")
        scenario = await Scenario.create(
            name="Bench",
            slug="bench",
            description="d",
            partner_persona="p",
            partner_system_prompt="ps",
            coach_system_prompt="cs",
            partner_model="m",
            coach_model="m",
        )
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        assert pool is not None
        version_id = await pool.fetchval(
            "SELECT id FROM scenario_version WHERE scenario_id = $1", scenario.pk
        )

        async def trigger(on: bool) -> None:
            verb = "ENABLE" if on else "DISABLE"
            await pool.execute(f'ALTER TABLE conversation_session {verb} TRIGGER "{TRIGGER}"')

        def inserts(kind: str) -> Run:
            async def run() -> int:
                await trigger(kind != "raw asyncpg, version named, no trigger")
                for _ in range(args.inserts):
                    if kind == "start_session":
                        await start_session(user, scenario)
                    elif kind == "raw asyncpg, trigger":
                        await pool.fetchrow(INSERT, user.pk, scenario.pk)
                    else:
                        await pool.fetchrow(INSERT_NAMED, user.pk, scenario.pk, version_id)
                return int(args.inserts)

            return run

        start = datetime(2026, 1, 1, tzinfo=UTC)
        ended = start + timedelta(minutes=5)

        def copy(on: bool) -> Run:
            async def run() -> int:
                await trigger(on)
                rows = [
                    (user.pk, scenario.pk, None if on else version_id, "completed", start, ended)
                    for _ in range(args.copy_rows)
                ]
                async with pool.acquire() as conn:
                    await conn.copy_records_to_table(
                        "conversation_session", records=rows, columns=COPY_COLUMNS
                    )
                return int(args.copy_rows)

            return run

        workloads: dict[str, Run] = {
            "start_session (trigger)": inserts("start_session"),
            "raw INSERT, trigger fills the version": inserts("raw asyncpg, trigger"),
            "raw INSERT, version named, no trigger": inserts(
                "raw asyncpg, version named, no trigger"
            ),
            "COPY, trigger fills the version": copy(True),
            "COPY, version named, no trigger": copy(False),
        }
        rates: dict[str, list[float]] = {k: [] for k in workloads}
        for _ in range(args.reps):
            for label, run in workloads.items():
                began = time.perf_counter()
                n = await run()
                rates[label].append(n / (time.perf_counter() - began))
                await pool.execute("TRUNCATE message, conversation_session")
        await trigger(True)
        await pool.close()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.reps} interleaved reps; rows/s")
    print(f"{'workload':42} {'median':>9} {'min':>9} {'max':>9} {'us/row':>8}")
    for label, values in rates.items():
        med = statistics.median(values)
        print(f"{label:42} {med:9.0f} {min(values):9.0f} {max(values):9.0f} {1e6 / med:8.1f}")


if __name__ == "__main__":
    asyncio.run(main())
