"""The models' FastQuerySet builds instances equal to Tortoise's own, and leaves every query it
does not handle to Tortoise."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.exceptions import DoesNotExist, FieldError, MultipleObjectsReturned
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from coach_db import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    ScenarioVersion,
    SessionStatus,
    User,
)
from coach_db import queryset as fast
from coach_db.models import AuditAction, AuditEvent, ErasureReceipt, StaffRole
from coach_db.queryset import FastQuerySet, instances
from coach_db.types import MessageRead
from tests.factories import make_message, make_scenario, make_session, make_user

MODELS: list[type[Model]] = [
    User,
    Scenario,
    ScenarioVersion,
    ConversationSession,
    Message,
    AuditEvent,
    ErasureReceipt,
]


def entries(instance: Model) -> dict[str, tuple[type, Any]]:
    """An instance's attributes with their types: a StrEnum member equals its str value, so
    equality alone would not see a role read back as a plain str."""
    return {key: (type(value), value) for key, value in vars(instance).items()}


async def tortoise_rows(model: type[Model]) -> list[Model]:
    """The same query through Tortoise's own QuerySet, which builds with _init_from_db."""
    return await QuerySet(model).all().order_by(model._meta.db_pk_column)


async def fill_every_table() -> None:
    """Rows in every table, with NULL in every nullable column somewhere."""
    admin = await make_user(is_staff=True, role=StaffRole.ADMIN, password_hash="$argon2id$x")
    await make_user(password_hash=None)
    scenario = await make_scenario(partner_persona="", description="Ünïcødé 😀")
    await make_scenario(is_active=False)
    active = await make_session(scenario=scenario)
    ended = await make_session(status=SessionStatus.COMPLETED, scenario=scenario)
    await make_message(session=active, audio_url=None)
    await make_message(
        session=active,
        role=MessageRole.COACH,
        metadata={"big": 12345678901234567890123, "nested": {"a": [1.5, None, True]}},
        audio_url="https://example.com/a.mp3",
    )
    await make_message(session=active, role=MessageRole.PARTNER, metadata={})
    assert ended.status is SessionStatus.COMPLETED
    await AuditEvent.create(
        actor_id=admin.id,
        actor_email=admin.email,
        action=AuditAction.UPDATE,
        model="scenario",
        row_id=scenario.id,
        changes={"name": ["a", "b"]},
    )
    await AuditEvent.create(action=AuditAction.VIEW, model="message", changes=None)
    await ErasureReceipt.create(email_hash="0" * 64, counts={"message": 3}, erased_by="cli")
    await ErasureReceipt.create(email_hash="f" * 64, counts={}, erased_by=admin.email)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
async def test_every_model_reads_the_instances_tortoise_builds(model: type[Model]) -> None:
    await fill_every_table()
    ours = await model.all().order_by(model._meta.db_pk_column)
    theirs = await tortoise_rows(model)
    assert isinstance(model.all(), FastQuerySet)
    assert len(ours) >= 2
    assert [entries(o) for o in ours] == [entries(t) for t in theirs]
    assert all(type(o) is model for o in ours)


async def test_nulls_enums_json_and_times_are_read_as_tortoise_reads_them() -> None:
    session = await make_session()
    await make_message(session=session)
    await make_message(session=session, role=MessageRole.PARTNER, metadata={"k": [1, "é", None]})
    ours = await Message.filter(session_id=session.id).order_by("id")
    assert [entries(o) for o in ours] == [entries(t) for t in await tortoise_rows(Message)]
    assert ours[0].metadata == {} and ours[0].audio_url is None
    assert ours[0].timestamp.tzinfo is not None
    ended = await ConversationSession.get(id=session.id)
    ended.status = SessionStatus.ABANDONED
    ended.ended_at = datetime.now(UTC)
    await ended.save()
    (read,) = await ConversationSession.filter(id=session.id)
    assert entries(read) == entries(await QuerySet(ConversationSession).get(id=session.id))
    assert read.status is SessionStatus.ABANDONED and read.duration_seconds is not None
    assert ours[1].role is MessageRole.PARTNER
    assert ours[1].metadata == {"k": [1, "é", None]}


async def test_plain_list_queries_do_not_call_init_from_db(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken (else the equality tests above would compare Tortoise with itself)."""
    await make_message()
    calls: list[dict[str, Any]] = []
    original = Message._init_from_db

    def counting(**kwargs: Any) -> Message:
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(Message, "_init_from_db", counting)
    assert len(await Message.filter(role=MessageRole.USER).order_by("timestamp")) == 1
    assert len(await Message.all().limit(5)) == 1
    session = await ConversationSession.first()
    assert session is not None
    assert len(await session.messages.all()) == 1  # a reverse relation's query too
    assert await Message.first() and await Message.get(role=MessageRole.USER)  # single rows too
    assert calls == []
    await Message.all().only("id", "session_id").first()  # a partial row: Tortoise's path
    assert len(calls) == 1


async def test_queries_the_fast_path_does_not_handle_give_tortoises_results() -> None:
    first = await make_message(metadata={"n": 1})
    await make_message(session=first.session, role=MessageRole.COACH)
    await make_message()

    joined = await Message.all().select_related("session__scenario").order_by("id")
    assert joined[0].session.scenario.id == (await first.session).scenario_id  # type: ignore[attr-defined]
    prefetched = await ConversationSession.all().prefetch_related("messages").order_by("id")
    assert [len(s.messages) for s in prefetched] == [2, 1]
    counted = await ConversationSession.annotate(n=Count("messages")).order_by("id")
    assert [s.n for s in counted] == [2, 1]  # type: ignore[attr-defined]
    partial = await Message.all().only("id", "content").order_by("id")
    assert partial[0]._partial and partial[0].content == first.content
    assert (await Message.get(id=first.id)).metadata == {"n": 1}
    with pytest.raises(MultipleObjectsReturned):
        await Message.get(session_id=first.session_id)  # type: ignore[attr-defined]
    with pytest.raises(DoesNotExist):
        await Message.get(id=-1)
    assert await Message.filter(id=-1) == []
    values = await Message.filter(id=first.id).values("id", "metadata")
    assert values == [{"id": first.id, "metadata": {"n": 1}}]


async def test_instances_read_fast_save_update_and_delete_like_tortoises() -> None:
    message = await make_message(content="before")
    (read,) = await Message.filter(id=message.id)
    read.content = "after"
    await read.save()  # an UPDATE of the row read (_saved_in_db), not an INSERT of a new one
    assert [m.content for m in await Message.all()] == ["after"]
    await read.fetch_related("session")
    assert read.session.id == message.session.id  # type: ignore[attr-defined]
    assert MessageRead.model_validate(read).content == "after"
    await read.delete()
    assert await Message.all().count() == 0


async def test_a_stored_value_the_field_rejects_raises_tortoises_error() -> None:
    """An unknown enum value or text that is not JSON (a hand-made row; the database's own
    columns cannot hold them) fails as Tortoise's _init_from_db fails."""
    session = await make_session()
    conn = Message._meta.db
    sql = (
        "SELECT 1::bigint AS id, $1::int AS session_id, $2::text AS role, 'x'::text AS content,"
        " now() AS timestamp, NULL::text AS audio_url, $3::text AS metadata"
    )
    for role, metadata, error in (("shouting", "{}", ValueError), ("user", "{bad", FieldError)):
        _, rows = await conn.execute_query(sql, [session.id, role, metadata])
        with pytest.raises(error) as ours:
            await instances(Message, rows)
        with pytest.raises(error) as theirs:
            Message._init_from_db(**rows[0])
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)


async def test_a_large_result_lets_other_tasks_run_while_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = await make_session()
    await Message.bulk_create(
        [Message(session=session, role=MessageRole.USER, content=f"m{i}") for i in range(50)]
    )
    _, rows = await Message._meta.db.execute_query('SELECT * FROM "message"')
    monkeypatch.setattr(fast, "CHUNK", 10)
    ticks = 0

    async def other_request() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    before = ticks
    built = await instances(Message, rows)
    during = ticks - before
    task.cancel()
    assert len(built) == 50
    assert during >= 4  # a yield after each chunk of 10 but the last


def _collections_during(collected: list[int]) -> Callable[[str, dict[str, Any]], None]:
    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    return count


async def test_building_instances_does_not_run_the_garbage_collector_per_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of new instances (tracked objects, no cycles) would set off a collection every
    700: at most one per chunk of CHUNK rows runs, and the collector is on afterwards."""
    session = await make_session()
    await Message.bulk_create(
        [Message(session=session, role=MessageRole.USER, content=f"m{i}") for i in range(6000)]
    )
    _, rows = await Message._meta.db.execute_query('SELECT * FROM "message"')
    collected: list[int] = []
    count = _collections_during(collected)
    gc.callbacks.append(count)
    try:
        built = await instances(Message, rows)
    finally:
        gc.callbacks.remove(count)
    assert len(built) == 6000 and gc.isenabled()
    assert len(collected) <= 6000 // fast.CHUNK, collected


async def test_a_collector_the_application_turned_off_stays_off() -> None:
    await make_message()
    gc.disable()
    try:
        assert len(await Message.all()) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ZeroDivisionError), fast.collection_paused():
        assert not gc.isenabled()
        _ = 1 / 0
    assert gc.isenabled()
