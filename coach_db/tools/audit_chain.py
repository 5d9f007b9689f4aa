"""The audit trail's hash chain (migration 8): verify it outside the database, export its head.

The database seals every audit_event row as it is inserted (trigger audit_event_seal). This
module recomputes every seal in Python, from the rows alone, so a changed database function
cannot make a tampered trail look whole; a checkpoint (the chain head, written elsewhere)
also catches a trail rewritten consistently or cut short by someone who can write anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from coach_db.db import connect_raw
from coach_db.errors import CoachDbError

GENESIS = "0" * 64
CHECKPOINT_FORMAT = "coach-db audit checkpoint"
# The personal columns: in the hash only through their digests, sha256(nonce || value).
PERSONAL = ("actor_email", "subject_id", "changes")
ERASED = "[erased]"
ROWS_SQL = """
    SELECT id, chain_seq, chain_prev, chain_hash, seal_digests, seal_nonces::text AS nonces,
           created_at, actor_id, actor_email, action, model, row_id, subject_id,
           changes::text AS changes, db_role
      FROM audit_event ORDER BY chain_seq NULLS LAST, id"""


def enc(value: str | None) -> str:
    """Length-prefixed text, as the database's audit_enc()."""
    return "~" if value is None else f"{len(value.encode())}:{value}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _stamp(value: datetime) -> str:
    """created_at as the seal writes it: UTC, microseconds (to_char ... HH24:MI:SS.US)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def row_hash(row: asyncpg.Record | dict[str, Any]) -> str:
    """The chain_hash a row must have, from its stored chain_prev and seal_digests."""
    return sha256(
        str(row["chain_prev"])
        + enc(str(row["chain_seq"]))
        + enc(str(row["id"]))
        + enc(_stamp(row["created_at"]))
        + enc(_text(row["actor_id"]))
        + enc(row["action"])
        + enc(row["model"])
        + enc(_text(row["row_id"]))
        + enc(row["db_role"])
        + enc(row["seal_digests"])
    )


def _redacted(name: str, value: str | None) -> bool:
    """Whether a personal value without its nonce has the form an erasure leaves."""
    if value is None:
        return True
    if name != "changes":
        return False
    data = json.loads(value)
    if isinstance(data, dict):
        return all(v == ERASED for v in data.values())
    return bool(data == ERASED)


@dataclass
class Checkpoint:
    """The chain head at one moment: its position and hash (and which row, when)."""

    seq: int
    hash: str
    row_id: int | None = None
    created_at: str | None = None
    format: str = CHECKPOINT_FORMAT

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError
            return cls(
                seq=int(data["seq"]),
                hash=str(data["hash"]),
                row_id=data.get("row_id"),
                created_at=data.get("created_at"),
            )
        except OSError as exc:
            raise CoachDbError(f"Can't read the checkpoint {path}: {exc.strerror}.") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CoachDbError(
                f"{path} is not a checkpoint written by `coach-db audit checkpoint`."
            ) from None


@dataclass
class Problem:
    """The first place where the trail is not what was sealed."""

    kind: str  # changed, deleted, inserted, truncated, rewritten
    row_id: int | None
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"row id {self.row_id}" if self.row_id is not None else "the trail"
        at = f" (chain position {self.seq})" if self.seq is not None else ""
        return f"{self.kind}: {where}{at}: {self.detail}"


@dataclass
class Report:
    rows: int
    redacted_fields: int
    head: Checkpoint | None
    problem: Problem | None


def _check_row(row: asyncpg.Record, expected: int, prev: str) -> Problem | None:
    """What is wrong with one row, following a whole chain up to `expected - 1` / `prev`."""
    rid, seq = row["id"], row["chain_seq"]
    if seq is None or row["chain_hash"] is None:
        return Problem("inserted", rid, None, "it is not in the chain (written without its seal)")
    if seq > expected:
        missing = f"{expected}" if seq == expected + 1 else f"{expected} to {seq - 1}"
        return Problem("deleted", rid, seq, f"the rows at chain position {missing} are gone")
    if seq < expected:
        return Problem("inserted", rid, seq, "a second row at the same chain position")
    digests = (row["seal_digests"] or "").split(" ")
    try:
        nonces = json.loads(row["nonces"]) if row["nonces"] else {}
    except ValueError:
        nonces = None
    if len(digests) != len(PERSONAL) or not isinstance(nonces, dict):
        return Problem("changed", rid, seq, "its seal (digests or nonces) was altered")
    for name, digest in zip(PERSONAL, digests, strict=True):
        value = _text(row[name])
        if name in nonces:
            if sha256(str(nonces[name]) + enc(value)) != digest:
                return Problem("changed", rid, seq, f"{name} is not the value that was sealed")
        elif not _redacted(name, value):
            return Problem("changed", rid, seq, f"{name} has no nonce but is not redacted")
    if row_hash(row) != row["chain_hash"]:
        return Problem("changed", rid, seq, "its columns do not match its chain_hash")
    if row["chain_prev"] != prev:
        return Problem(
            "inserted",
            rid,
            seq,
            "it does not follow the row before it (chain_prev differs): rows were inserted, "
            "replaced or re-ordered before it",
        )
    return None


async def _rows(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    async for row in conn.cursor(ROWS_SQL, prefetch=1000):
        yield row


async def verify(url: str, checkpoint: Checkpoint | None = None) -> Report:
    """Recompute the whole chain in one snapshot; the first problem found, if any."""
    conn = await connect_raw(url, application_name="coach-db audit verify")
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _verify(conn, checkpoint)
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
        raise CoachDbError(
            "The audit trail has no hash chain yet: run `coach-db deploy` (migration 8)."
        ) from None
    finally:
        await conn.close()


async def _verify(conn: asyncpg.Connection, checkpoint: Checkpoint | None) -> Report:
    rows = redacted = 0
    prev, last = GENESIS, None
    problem: Problem | None = None
    async for row in _rows(conn):
        problem = _check_row(row, rows + 1, prev)
        if (
            problem is None
            and checkpoint is not None
            and row["chain_seq"] == checkpoint.seq
            and row["chain_hash"] != checkpoint.hash
        ):
            problem = Problem(
                "rewritten",
                row["id"],
                row["chain_seq"],
                "its hash differs from the checkpoint's: the trail up to here was rewritten",
            )
        if problem is not None:
            break
        rows += 1
        redacted += len(PERSONAL) - len(json.loads(row["nonces"] or "{}"))
        prev, last = row["chain_hash"], row
    head = _checkpoint(last)
    if problem is None:
        stored = await conn.fetchrow("SELECT seq, hash FROM audit_chain_head WHERE id = 1")
        if stored is not None and (stored["seq"], stored["hash"]) != (rows, prev):
            problem = Problem(
                "deleted",
                None,
                stored["seq"],
                f"the chain ends at position {rows} but its head says {stored['seq']}: "
                "the last rows are gone",
            )
    if problem is None and checkpoint and checkpoint.seq > rows:
        problem = Problem(
            "truncated",
            None,
            checkpoint.seq,
            f"the chain ends at position {rows} but the checkpoint was taken at "
            f"{checkpoint.seq}: rows were removed from its end",
        )
    return Report(rows, redacted, head, problem)


def _checkpoint(row: asyncpg.Record | None) -> Checkpoint:
    if row is None:
        return Checkpoint(seq=0, hash=GENESIS)
    return Checkpoint(
        seq=row["chain_seq"],
        hash=row["chain_hash"],
        row_id=row["id"],
        created_at=row["created_at"].astimezone(UTC).isoformat(),
    )


async def checkpoint(url: str) -> Checkpoint:
    """The chain head now: the last sealed row's position and hash."""
    conn = await connect_raw(url, application_name="coach-db audit checkpoint")
    try:
        row = await conn.fetchrow(
            "SELECT id, chain_seq, chain_hash, created_at FROM audit_event"
            " WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1"
        )
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
        raise CoachDbError(
            "The audit trail has no hash chain yet: run `coach-db deploy` (migration 8)."
        ) from None
    finally:
        await conn.close()
    return _checkpoint(row)
