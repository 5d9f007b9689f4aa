"""export-transcripts next to raw asyncpg streaming the same rows (not part of the tests).

    uv run python bench/privacy.py [--database coach_bench_100k] [--reps 3]

Interleaves: coach_db.privacy.export_transcripts (batches + cursor + scrubbing), the same
without scrubbing, and one raw asyncpg cursor over the joined rows writing the same JSON lines
without scrubbing. Reports wall and CPU seconds per run (CPU is steadier on a loaded machine)
and messages per second. Only reads the database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from coach_db import privacy
from coach_db.scrub import scrub

RAW_SQL = """
    SELECT s.id, s.user_id, sc.slug, s.status, s.started_at, s.ended_at, s.duration_seconds,
           m.role, m.content, m."timestamp"
      FROM conversation_session s JOIN scenario sc ON sc.id = s.scenario_id
      LEFT JOIN message m ON m.session_id = s.id
     ORDER BY s.id, m."timestamp", m.id"""


class Sink(io.StringIO):
    """Counts what is written, keeps nothing (the disk is not what is measured)."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


async def raw_export(url: str, out: Sink) -> int:
    conn = await asyncpg.connect(url)
    messages = 0
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            current = None
            batch: list[dict[str, Any]] = []
            head: dict[str, Any] = {}
            async for row in conn.cursor(RAW_SQL, prefetch=1000):
                if row["id"] != current:
                    if current is not None:
                        out.write(privacy.dumps({**head, "messages": batch}) + "\n")
                    current, batch = row["id"], []
                    head = {
                        "session": row["id"],
                        "scenario": row["slug"],
                        "participant": str(row["user_id"]),
                        "status": row["status"],
                        "started_at": row["started_at"],
                        "ended_at": row["ended_at"],
                        "duration_seconds": row["duration_seconds"],
                    }
                if row["role"] is not None:
                    batch.append(
                        {
                            "role": row["role"],
                            "content": row["content"],
                            "timestamp": row["timestamp"],
                        }
                    )
                    messages += 1
            if current is not None:
                out.write(privacy.dumps({**head, "messages": batch}) + "\n")
    finally:
        await conn.close()
    return messages


async def package_export(url: str, out: Sink, scrubbing: bool) -> int:
    keep = str if not scrubbing else scrub
    counts = await privacy.export_transcripts(url, out, privacy.TranscriptFilter(), scrubber=keep)
    return counts["messages"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    server = os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--server", default=server)
    parser.add_argument("--database", default="coach_bench_100k")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    url = f"{args.server.rstrip('/')}/{args.database}"
    runs: dict[str, list[tuple[float, float, int]]] = {}
    sides: dict[str, Callable[[Sink], Awaitable[int]]] = {
        "raw asyncpg (no scrub)": lambda sink: raw_export(url, sink),
        "coach_db, no scrub": lambda sink: package_export(url, sink, False),
        "coach_db export-transcripts": lambda sink: package_export(url, sink, True),
    }
    for _ in range(args.reps):
        for name, run in sides.items():
            sink = Sink()
            wall, cpu = time.perf_counter(), time.process_time()
            messages = await run(sink)
            runs.setdefault(name, []).append(
                (time.perf_counter() - wall, time.process_time() - cpu, messages)
            )
    print(f"{args.database}: median of {args.reps}, load {os.getloadavg()[0]:.1f}")
    raw_cpu = statistics.median(r[1] for r in runs["raw asyncpg (no scrub)"])
    for name, results in runs.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        messages = results[0][2]
        print(
            f"  {name:30} wall {wall:7.2f} s  cpu {cpu:7.2f} s ({cpu / raw_cpu:4.2f}x raw)"
            f"  {messages / cpu:10,.0f} messages per cpu-second"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
