"""Issue 18: the audit trail's hash chain (migration 8) tells when even the owner changed it.

Tampering here is done as the owner (the suite's role) with the guards switched off, as an
owner or a superuser could; `coach_db.tools.audit_chain.verify` must name what happened.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from coach_db import privacy
from coach_db.tools import audit_chain
from coach_db.tools.audit_chain import Checkpoint
from tests.factories import make_user
from tests.processes import coach_db_cmd

GUARDS = (
    "audit_event_append_only",
    "audit_event_seal",
    "audit_event_check_insert",
    "audit_event_head",
)


async def _events(raw: asyncpg.Connection, n: int) -> list[int]:
    ids = []
    for i in range(n):
        ids.append(
            await raw.fetchval(
                "INSERT INTO audit_event (actor_email, action, model, row_id, changes)"
                " VALUES ('boss@example.com', 'update', 'scenario', $1::int, $2) RETURNING id",
                i,
                json.dumps({"name": [f"v{i}", f"v{i + 1}"]}),
            )
        )
    return ids


async def _tamper(raw: asyncpg.Connection, *statements: str) -> None:
    """Run statements as the owner with the trail's guards off, as an owner could."""
    async with raw.transaction():
        for trigger in GUARDS:
            await raw.execute(f"ALTER TABLE audit_event DISABLE TRIGGER {trigger}")
        for statement in statements:
            await raw.execute(statement)
        for trigger in GUARDS:
            await raw.execute(f"ALTER TABLE audit_event ENABLE TRIGGER {trigger}")


async def _problem(url: str, checkpoint: Checkpoint | None = None) -> audit_chain.Problem | None:
    return (await audit_chain.verify(url, checkpoint)).problem


async def test_an_intact_trail_verifies_also_after_an_erasure_redacted_it(
    raw: asyncpg.Connection, database_url: str
) -> None:
    person = await make_user()
    await _events(raw, 2)
    await raw.execute(
        "INSERT INTO audit_event (actor_email, action, model, row_id, subject_id, changes)"
        " VALUES ($1, 'update', 'user', $2::int, $2::int, $3)",
        person.email,
        person.pk,
        json.dumps({"email": [person.email, "x@example.com"]}),
    )
    assert await _problem(database_url) is None
    await privacy.erase_user(database_url, person.email, "test")
    report = await audit_chain.verify(database_url)
    assert report.problem is None, str(report.problem)
    assert report.rows == 4 and report.redacted_fields == 3
    assert report.head is not None and report.head.seq == 4


@pytest.mark.parametrize(
    "change",
    [
        'changes = \'{"name": ["v1", "forged"]}\'',  # a personal value (through its digest)
        "actor_email = 'innocent@example.com'",
        "action = 'view'",  # a column in the hash itself
        "created_at = created_at - interval '1 day'",
        "subject_id = 5, seal_nonces = seal_nonces - 'subject_id'",  # a redaction that is not
    ],
)
async def test_verify_names_a_changed_row(
    raw: asyncpg.Connection, database_url: str, change: str
) -> None:
    ids = await _events(raw, 3)
    await _tamper(raw, f"UPDATE audit_event SET {change} WHERE id = {ids[1]}")
    problem = await _problem(database_url)
    assert problem is not None and (problem.kind, problem.row_id) == ("changed", ids[1])


async def test_verify_names_a_deleted_row(raw: asyncpg.Connection, database_url: str) -> None:
    ids = await _events(raw, 3)
    await _tamper(raw, f"DELETE FROM audit_event WHERE id = {ids[1]}")
    problem = await _problem(database_url)
    assert problem is not None and (problem.kind, problem.row_id) == ("deleted", ids[2])


async def test_verify_names_a_row_inserted_in_the_middle(
    raw: asyncpg.Connection, database_url: str
) -> None:
    ids = await _events(raw, 3)
    # Unsealed, with an id between two real rows.
    await _tamper(
        raw,
        f"INSERT INTO audit_event (id, action, model, row_id, created_at) VALUES"
        f" ({ids[2] + 100}, 'delete', 'user', 1, now())",
    )
    problem = await _problem(database_url)
    assert problem is not None and (problem.kind, problem.row_id) == ("inserted", ids[2] + 100)


async def test_a_checkpoint_catches_a_truncated_tail_and_a_consistent_rewrite(
    raw: asyncpg.Connection, database_url: str
) -> None:
    """What verify alone cannot see (the head moved back with the tail; every seal recomputed
    after a change), the checkpoint kept outside the database does."""
    ids = await _events(raw, 4)
    kept = await audit_chain.checkpoint(database_url)
    assert (kept.seq, kept.row_id) == (4, ids[3])
    assert await _problem(database_url, kept) is None

    # The tail cut, the head moved back to match: consistent, so only the checkpoint sees it.
    await _tamper(
        raw,
        f"DELETE FROM audit_event WHERE id = {ids[3]}",
        f"UPDATE audit_chain_head SET seq = 3, hash = (SELECT chain_hash FROM audit_event"
        f" WHERE id = {ids[2]})",
    )
    assert await _problem(database_url) is None
    problem = await _problem(database_url, kept)
    assert problem is not None and problem.kind == "truncated"

    # Rewritten from the first row on, every seal recomputed by the database's own function.
    await _events(raw, 1)
    kept = await audit_chain.checkpoint(database_url)
    await _tamper(
        raw,
        f'UPDATE audit_event SET changes = \'{{"name": ["forged", "forged"]}}\''
        f" WHERE id = {ids[0]}",
        """DO $$
        DECLARE r audit_event; last_hash TEXT := repeat('0', 64);
        BEGIN
            FOR r IN SELECT * FROM audit_event ORDER BY chain_seq LOOP
                r := audit_seal_row(r, r.chain_seq, last_hash);
                UPDATE audit_event SET chain_prev = r.chain_prev, chain_hash = r.chain_hash,
                       seal_digests = r.seal_digests, seal_nonces = r.seal_nonces
                 WHERE id = r.id;
                last_hash := r.chain_hash;
            END LOOP;
            UPDATE audit_chain_head SET hash = last_hash;
        END $$""",
    )
    assert await _problem(database_url) is None
    problem = await _problem(database_url, kept)
    assert problem is not None and problem.kind == "rewritten"


async def test_concurrent_inserts_from_many_connections_form_one_chain(
    database_url: str,
) -> None:
    """Inserts from 12 connections at once queue on the head's row lock: one chain, no fork."""

    async def writer(n: int) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for i in range(10):
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO audit_event (action, model, row_id)"
                        " VALUES ('view', 'user', $1)",
                        n * 100 + i,
                    )
        finally:
            await conn.close()

    await asyncio.gather(*(writer(n) for n in range(12)))
    report = await audit_chain.verify(database_url)
    assert report.problem is None, str(report.problem)
    assert report.rows == 120


def test_audit_commands_verify_checkpoint_and_report_tampering(
    database_url: str, server_url: str, tmp_path: Path
) -> None:
    asyncio.run(_seed_trail(database_url))
    checkpoint = tmp_path / "head.json"
    written = coach_db_cmd("audit", "checkpoint", "--out", str(checkpoint), url=database_url)
    assert written.returncode == 0, written.stderr
    assert json.loads(checkpoint.read_text())["seq"] == 2
    ok = coach_db_cmd("audit", "verify", "--checkpoint", str(checkpoint), url=database_url)
    assert ok.returncode == 0 and "intact" in ok.stderr, ok.stderr
    asyncio.run(_cut_tail(database_url))
    cut = coach_db_cmd("audit", "verify", "--checkpoint", str(checkpoint), url=database_url)
    assert cut.returncode == 1 and "truncated" in cut.stderr, cut.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    refused = coach_db_cmd("audit", "verify", "--checkpoint", str(bad), url=database_url)
    assert refused.returncode == 1 and "not a checkpoint" in refused.stderr
    assert "Traceback" not in refused.stderr + cut.stderr
    # A database without the trail (the server's maintenance database): one clear line.
    empty = coach_db_cmd("audit", "verify", url=server_url)
    assert empty.returncode == 1 and "coach-db deploy" in empty.stderr, empty.stderr
    assert "Traceback" not in empty.stderr


async def _seed_trail(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await _events(conn, 2)
    finally:
        await conn.close()


async def _cut_tail(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await _tamper(
            conn,
            "DELETE FROM audit_event WHERE chain_seq = 2",
            "UPDATE audit_chain_head SET seq = 1,"
            " hash = (SELECT chain_hash FROM audit_event WHERE chain_seq = 1)",
        )
    finally:
        await conn.close()
