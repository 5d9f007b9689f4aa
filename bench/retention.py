"""Retention on a big database: total time, the longest batch (its transaction holds the locks),
WAL written (not a test; it deletes, so run it on a copy).

    uv run python bench/retention.py URL --before 2025-06-11 [--batch 1000] [--out FILE]

Runs coach_db.retention.delete_idle as `coach-db retention` does, timing every batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

import coach_db
from coach_db.config import mask_url
from coach_db.retention import count_idle, delete_idle


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--before", type=datetime.fromisoformat, required=True)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cutoff = args.before.replace(tzinfo=args.before.tzinfo or UTC)
    conn = await asyncpg.connect(args.url)
    await coach_db.init_db(args.url)
    try:
        counted = time.perf_counter()
        todo = await count_idle(cutoff)
        count_seconds = time.perf_counter() - counted
        wal_start = await conn.fetchval("SELECT pg_current_wal_lsn()")
        load_start = os.getloadavg()[0]
        started = time.perf_counter()
        batches: list[float] = []
        sessions = messages = 0
        mark = time.perf_counter()
        async for deleted in delete_idle(cutoff, batch=args.batch):
            now = time.perf_counter()
            batches.append(now - mark)
            mark = now
            sessions += deleted.sessions
            messages += deleted.messages
        total = time.perf_counter() - started
        wal = await conn.fetchval(
            "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), $1))", wal_start
        )
        left = await conn.fetchval("SELECT count(*) FROM message")
    finally:
        await coach_db.close_db()
        await conn.close()
    batches.sort()
    p95 = batches[int(len(batches) * 0.95) - 1]
    lines = [
        f"coach-db retention on {mask_url(args.url)}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        f" batches of {args.batch} sessions, cutoff {cutoff:%Y-%m-%d}; load average"
        f" {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (2 shared cores)",
        f"dry-run count: {todo.sessions:,} sessions / {todo.messages:,} messages in"
        f" {count_seconds:.1f} s",
        f"deleted {sessions:,} sessions / {messages:,} messages in {total:.0f} s"
        f" ({messages / total:,.0f} messages/s); {len(batches)} batches, one transaction each:"
        f" median {statistics.median(batches):.2f} s, p95 {p95:.2f} s,"
        f" longest {batches[-1]:.2f} s (the longest any session row lock is held)",
        f"WAL written: {wal}; messages left: {left:,}",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
