"""One add_message writer for tests/test_patroni.py's partition test, run inside the namespace of
the primary that is cut off (the client on its side of the partition).

Usage: python -m tests.partition_writer DATABASE_URL SESSION_ID ; writes with idempotency keys,
retrying each until it is acknowledged; prints "ready" after the first; at a line on stdin
stops and prints a JSON list of [key, message id, wall-clock time of the acknowledgement].
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import coach_db
from coach_db import DatabaseConnectionLost, add_message


async def main(url: str, session_id: int) -> None:
    acked: list[list[object]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin, stop.set)
    await coach_db.init_db(url, check=False)
    sent = 0
    while not stop.is_set():
        key = f"cut-{sent}"
        try:
            message = await add_message(session_id, "user", key, idempotency_key=key)
        except DatabaseConnectionLost:
            await asyncio.sleep(0.1)
            continue
        except Exception:  # init_db's pool may fail to reconnect: keep trying
            await asyncio.sleep(0.1)
            continue
        acked.append([key, message.id, time.time()])
        if sent == 0:
            print("ready", flush=True)
        sent += 1
    print(json.dumps(acked), flush=True)
    await coach_db.close_db()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
