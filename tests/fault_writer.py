"""Concurrent add_message load for tests/test_faults.py, in a process of its own (its own
Tortoise connection, so the suite's stays untouched).

Usage: python -m tests.fault_writer DATABASE_URL SESSION_ID... ; prints "ready" after 100
acknowledged writes, keeps writing until a line arrives on stdin, then has every writer get
one more write through (the database is back) and prints a JSON report of every attempt.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import coach_db
from coach_db import add_message
from coach_db.errors import DatabaseConnectionLost


async def writer(session_id: int, stop: asyncio.Event, report: dict[str, Any]) -> None:
    attempt = 0
    recovered = False
    while not (stop.is_set() and recovered):
        content = f"s{session_id}-{attempt}"
        attempt += 1
        try:
            await add_message(session_id, "user", content)
        except DatabaseConnectionLost as exc:
            report["failed"].append(
                [content, "DatabaseConnectionLost", exc.maybe_written, str(exc)]
            )
            recovered = False
            await asyncio.sleep(0.02)
        except Exception as exc:  # an unclear error: the test fails on it
            report["failed"].append([content, type(exc).__name__, True, str(exc)[:300]])
            await asyncio.sleep(0.02)
        else:
            report["acknowledged"].append(content)
            recovered = stop.is_set()
            if len(report["acknowledged"]) == 100:
                print("ready", flush=True)


async def main(url: str, session_ids: list[int]) -> None:
    report: dict[str, Any] = {"acknowledged": [], "failed": []}
    stop = asyncio.Event()
    async with coach_db.connect(url):
        tasks = [asyncio.create_task(writer(s, stop, report)) for s in session_ids]
        await asyncio.to_thread(sys.stdin.readline)
        stop.set()
        await asyncio.gather(*tasks)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(arg) for arg in sys.argv[2:]]))
