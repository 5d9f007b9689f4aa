"""The load of the failover tests: writers that add messages with idempotency keys and retry each
one with its key on DatabaseConnectionLost until it is stored, and the checks of what they got."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from coach_db import DatabaseConnectionLost, add_message

# A writer retries a refused write after this pause (seconds).
RETRY_PAUSE = 0.05


@dataclass
class Load:
    """What the writers had acknowledged, and how long each acknowledged write took."""

    session_ids: list[int]
    acked: dict[str, int] = field(default_factory=dict)  # key -> message id
    # (start of the first attempt, acknowledgement) of each write, loop time.
    spans: list[tuple[float, float]] = field(default_factory=list)
    # Loop time of each writer's latest acknowledged write.
    last_ack: list[float] = field(default_factory=list)
    refusals: int = 0
    maybe_written: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, condition: Callable[[], bool], patience: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + patience
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "the writers are stuck"
            await asyncio.sleep(0.05)

    def acked_since(self, moment: float) -> int:
        return sum(1 for _, done in self.spans if done > moment)

    def longest_wait(self, after: float = 0.0) -> float:
        """The longest time a write waited to be acknowledged (first attempt to success)."""
        return max((done - start for start, done in self.spans if done > after), default=0.0)


async def _writer(load: Load, number: int) -> None:
    loop = asyncio.get_running_loop()
    session_id = load.session_ids[number]
    sent = 0
    while not load.stop.is_set():
        key = f"w{number}-{sent}"
        started = loop.time()
        while True:
            try:
                message = await add_message(session_id, "user", f"{key} text", idempotency_key=key)
                break
            except DatabaseConnectionLost as exc:
                load.refusals += 1
                load.maybe_written += exc.maybe_written
                await asyncio.sleep(RETRY_PAUSE)
        load.acked[key] = message.id
        load.spans.append((started, loop.time()))
        load.last_ack[number] = loop.time()
        sent += 1


async def run_writers(load: Load) -> list[asyncio.Task[None]]:
    """One task per session, writing until load.stop is set."""
    load.last_ack = [0.0] * len(load.session_ids)
    return [asyncio.create_task(_writer(load, n)) for n in range(len(load.session_ids))]


async def check_nothing_lost_or_doubled(load: Load, url: str) -> dict[str, int]:
    """Every acknowledged write is on the server of `url` with its id, once; counts are exact.

    Returns the figures: acknowledged writes, rows, lost, duplicated.
    """
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, id FROM message WHERE session_id = ANY($1::int[])",
            load.session_ids,
        )
        drift = await conn.fetchval(
            "SELECT count(*) FROM conversation_session s WHERE id = ANY($1::int[]) AND"
            " total_messages <> (SELECT count(*) FROM message m WHERE m.session_id = s.id)",
            load.session_ids,
        )
    finally:
        await conn.close()
    stored = {row["idempotency_key"]: row["id"] for row in rows}
    lost = [key for key, id in load.acked.items() if stored.get(key) != id]
    figures = {
        "acknowledged": len(load.acked),
        "rows": len(rows),
        "lost": len(lost),
        "duplicated": len(rows) - len(stored),
        "unacknowledged but stored": len(set(stored) - set(load.acked)),
        "counter drift": drift,
    }
    assert lost == [], f"acknowledged writes lost: {lost[:10]}"
    assert figures["duplicated"] == 0
    assert drift == 0
    return figures
