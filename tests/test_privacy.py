"""Issue 13: the append-only audit trail, a person's data (export, erasure), research export."""

from __future__ import annotations

import asyncpg
import pytest


async def test_audit_rows_cannot_be_updated_deleted_or_truncated(raw: asyncpg.Connection) -> None:
    """Migration 7's triggers refuse changes to the trail, whoever writes (raw SQL here)."""
    event = await raw.fetchval(
        "INSERT INTO audit_event (action, model, row_id, changes)"
        " VALUES ('update', 'user', 1, '{\"username\": [\"a\", \"b\"]}') RETURNING id"
    )
    receipt = await raw.fetchval(
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by)"
        " VALUES ('x', '{}', 'cli') RETURNING id"
    )
    refused = [
        ("audit_event_append_only", f"UPDATE audit_event SET changes = NULL WHERE id = {event}"),
        ("audit_event_append_only", f"DELETE FROM audit_event WHERE id = {event}"),
        ("audit_event_append_only", "TRUNCATE audit_event"),
        (
            "erasure_receipt_append_only",
            f"UPDATE erasure_receipt SET counts = '{{}}' WHERE id = {receipt}",
        ),
        ("erasure_receipt_append_only", f"DELETE FROM erasure_receipt WHERE id = {receipt}"),
        ("erasure_receipt_append_only", "TRUNCATE erasure_receipt"),
        ("erasure_salt_append_only", "UPDATE erasure_salt SET salt = 'known'"),
        ("erasure_salt_append_only", "DELETE FROM erasure_salt"),
    ]
    for constraint, statement in refused:
        with pytest.raises(asyncpg.RestrictViolationError) as caught:
            await raw.execute(statement)
        assert caught.value.constraint_name == constraint, statement
    assert await raw.fetchval("SELECT count(*) FROM audit_event") == 1
    assert await raw.fetchval("SELECT changes::text FROM audit_event") == '{"username": ["a", "b"]}'


async def test_an_erasure_may_redact_personal_columns_of_audit_rows_and_nothing_else(
    raw: asyncpg.Connection,
) -> None:
    event = await raw.fetchval(
        "INSERT INTO audit_event (action, model, row_id, actor_email, changes)"
        " VALUES ('view', 'conversationsession', 7, 'a@b.co', '{}') RETURNING id"
    )
    async with raw.transaction():
        await raw.execute("SET LOCAL coach_db.erasure = 'on'")
        await raw.execute(f"UPDATE audit_event SET actor_email = NULL WHERE id = {event}")
        for statement in (
            f"UPDATE audit_event SET action = 'create' WHERE id = {event}",
            f"UPDATE audit_event SET created_at = now() - interval '1 day' WHERE id = {event}",
            f"DELETE FROM audit_event WHERE id = {event}",
        ):
            with pytest.raises(asyncpg.RestrictViolationError):
                async with raw.transaction():
                    await raw.execute(statement)
    assert await raw.fetchval("SELECT actor_email FROM audit_event") is None
    # Only for that transaction: LOCAL.
    with pytest.raises(asyncpg.RestrictViolationError):
        await raw.execute(f"UPDATE audit_event SET row_id = NULL WHERE id = {event}")
