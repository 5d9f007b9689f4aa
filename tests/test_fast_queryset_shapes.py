"""Query shapes through the models' FastQuerySet give what Tortoise's own QuerySet gives: the
same instances (attributes, their types, their order), the same exceptions, and instances that
behave the same afterwards. A hostile review of coach_db/queryset.py."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.contrib.pydantic import pydantic_model_creator
from tortoise.exceptions import FieldError
from tortoise.expressions import Q, Subquery
from tortoise.models import Model
from tortoise.query_utils import Prefetch
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coach_db import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
)
from coach_db import queryset as fast
from coach_db.errors import SessionChanged
from coach_db.models import AuditAction, AuditEvent, ErasureReceipt, StaffRole
from coach_db.types import MessageRead, SessionRead, UserRead
from tests.factories import backfill, make_message, make_scenario, make_session, make_user

Shape = Callable[[QuerySet[Any]], Any]

# Values that would break generated code if they ever reached its source.
HOSTILE = "'}); __import__('os').system('false') #\"\\n\u2028 {row[0]}"


def entries(instance: Any) -> Any:
    """An instance's attributes in order, with their types (a StrEnum member equals its str);
    anything else (a values() dict, a values_list() tuple) as it is."""
    if not isinstance(instance, Model):
        return instance
    return [(key, type(value), value) for key, value in vars(instance).items()]


def tortoise(model: type[Model]) -> QuerySet[Any]:
    return QuerySet(model)


async def fill() -> dict[str, Any]:
    """Rows in every table: NULLs in each nullable column, unicode, hostile text, big numbers."""
    admin = await make_user(
        email=" Ünï.O'Brien+{row[0]}\");#@Example.COM ",
        username=HOSTILE,
        is_staff=True,
        role=StaffRole.ADMIN,
        password_hash="$argon2id$x",
    )
    plain = await make_user(password_hash=None)
    scenario = await make_scenario(name="Ünïcødé 😀 scenario", description=HOSTILE)
    other = await make_scenario(is_active=False, partner_persona="")
    active = await make_session(user=admin, scenario=scenario)
    ended = await make_session(user=plain, scenario=other, status=SessionStatus.COMPLETED)
    await make_message(session=active, audio_url=None, content=HOSTILE)
    await make_message(
        session=active,
        role=MessageRole.COACH,
        metadata={
            HOSTILE: HOSTILE,
            "big": 12345678901234567890123456789,
            "neg": -(2**70),
            "float": 1.5e300,
            "nested": {"a": [1.5, None, True, "é😀"]},
        },
        audio_url="https://example.com/ä.mp3",
    )
    await make_message(session=active, role=MessageRole.PARTNER, metadata={})
    async with backfill():  # a message in the ended session too
        await make_message(
            session=ended,
            content="ünïcødé " * 50,
            timestamp=ended.ended_at - timedelta(minutes=1),  # type: ignore[operator]
        )
    await AuditEvent.create(
        actor_id=admin.id,
        actor_email=admin.email,
        action=AuditAction.UPDATE,
        model="scenario",
        row_id=2**62,
        subject_id=admin.id,
        changes={HOSTILE: [None, 2**100]},
    )
    await AuditEvent.create(action=AuditAction.VIEW, model="message", changes=None)
    await ErasureReceipt.create(email_hash="0" * 64, counts={"message": 3}, erased_by=HOSTILE)
    return {"admin": admin, "plain": plain, "active": active, "ended": ended}


async def outcome(query: Any) -> Any:
    """A query's result, or its exception as (type, message)."""
    try:
        return await query
    except Exception as exc:  # the same error both ways is the same behaviour
        return (type(exc), str(exc))


async def assert_same(shape: Shape, model: type[Model]) -> list[Any]:
    ours = await outcome(shape(model.all()))
    theirs = await outcome(shape(tortoise(model)))
    assert type(ours) is type(theirs)
    if isinstance(ours, list):
        assert [entries(o) for o in ours] == [entries(t) for t in theirs]
    elif isinstance(ours, dict):
        assert {k: entries(v) for k, v in ours.items()} == {
            k: entries(v) for k, v in theirs.items()
        }
    else:
        assert ours == theirs
    return ours if isinstance(ours, list) else [ours]


async def test_vars_lists_the_attributes_in_the_order_init_from_db_sets_them() -> None:
    """Not only equal dicts: the same order (repr(vars()), pickles, anything iterating it),
    whatever order the SELECT lists the columns in (it follows a set: PYTHONHASHSEED)."""
    await fill()
    for model in (User, Scenario, ConversationSession, Message, AuditEvent, ErasureReceipt):
        (ours, *_) = await model.all()
        theirs = await tortoise(model).get(pk=ours.pk)
        assert list(vars(ours)) == list(vars(theirs))
        assert list(vars(ours))[:4] == [
            "_partial",
            "_saved_in_db",
            "_custom_generated_pk",
            "_await_when_save",
        ]


MESSAGE_SHAPES: dict[str, Shape] = {
    "default ordering": lambda q: q.all(),
    "order limit offset": lambda q: q.order_by("-id").limit(2).offset(1),
    "offset only": lambda q: q.order_by("id").offset(2),
    "limit 0": lambda q: q.limit(0),
    "slice": lambda q: q.order_by("id")[1:3],
    "distinct": lambda q: q.distinct().order_by("id"),
    "q objects": lambda q: q.filter(
        Q(role=MessageRole.COACH) | Q(audio_url__isnull=True), ~Q(content="")
    ).order_by("id"),
    "exclude": lambda q: q.exclude(role=MessageRole.USER).order_by("-timestamp", "id"),
    "across two relations": lambda q: q.filter(session__user__username=HOSTILE).order_by("id"),
    "across to scenario": lambda q: q.filter(session__scenario__name__icontains="ÜNÏ"),
    "order by a related field": lambda q: q.order_by("-session__started_at", "id"),
    "subquery": lambda q: q.filter(
        session_id__in=Subquery(
            ConversationSession.filter(status=SessionStatus.ACTIVE).values("id")
        )
    ).order_by("id"),
    "json contains": lambda q: q.filter(metadata__contains={"big": 12345678901234567890123456789}),
    "group by pk": lambda q: q.group_by("id").order_by("id"),
    "empty": lambda q: q.filter(id=-1),
    "in_bulk": lambda q: q.in_bulk([1, 2, 3, 99], "id"),
    "first": lambda q: q.order_by("-id").first(),
    "last": lambda q: q.last(),
    "latest": lambda q: q.latest("timestamp"),
    "earliest": lambda q: q.earliest("content"),
    "get_or_none missing": lambda q: q.get_or_none(id=-5),
    "get missing": lambda q: q.get(id=-5),
    "get several": lambda q: q.get(id__gte=0),
    "get_or_none several": lambda q: q.get_or_none(id__gte=0),
    "get one": lambda q: q.get(content=HOSTILE),
    "values": lambda q: q.order_by("id").values(),
    "values_list": lambda q: q.order_by("id").values_list("id", "metadata", "role"),
    "count": lambda q: q.filter(role=MessageRole.USER).count(),
    "count with offset and limit": lambda q: q.offset(1).limit(2).count(),
    "count past the end": lambda q: q.offset(100).count(),
    "count limit 0": lambda q: q.limit(0).count(),
    "distinct count across a join": lambda q: q.filter(session__status="active").distinct().count(),
    "exists": lambda q: q.filter(content=HOSTILE).exists(),
}


# The shapes that build their instances on the fast path (the others are Tortoise's own code).
FAST_SHAPES = {
    name
    for name in MESSAGE_SHAPES
    if name not in {"in_bulk", "get_or_none missing", "get missing", "get several"}
    and name != "get_or_none several"
    and name not in {"values", "values_list"}
    and not name.startswith(("count", "distinct count"))
    and name != "exists"
}
# The shapes whose outcome is Tortoise's exception (compared as such above).
RAISING = {"get missing", "get several", "get_or_none several"}


@pytest.mark.parametrize("shape", MESSAGE_SHAPES.values(), ids=list(MESSAGE_SHAPES))
async def test_message_query_shapes_give_tortoises_instances(shape: Shape) -> None:
    await fill()
    await assert_same(shape, Message)


async def test_the_list_shapes_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Else the comparisons above would compare Tortoise with itself."""
    await fill()
    calls: list[Any] = []
    original = Message._init_from_db

    def counting(**kwargs: Any) -> Message:
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(Message, "_init_from_db", counting)
    for name in sorted(FAST_SHAPES):
        await MESSAGE_SHAPES[name](Message.all())
        assert calls == [], name
    await Message.all().only("id", "content", "session_id").first()  # partial: Tortoise's path
    assert len(calls) == 1


OTHER_SHAPES: list[tuple[type[Model], str, Shape]] = [
    (User, "unicode email", lambda q: q.filter(email__contains="ünï")),
    (User, "null password", lambda q: q.filter(password_hash__isnull=True)),
    (User, "by role", lambda q: q.filter(role__in=[StaffRole.ADMIN, StaffRole.VIEWER])),
    (Scenario, "default ordering by name", lambda q: q.all()),
    (ConversationSession, "default ordering", lambda q: q.all()),
    (
        ConversationSession,
        "null ended_at and user email",
        lambda q: q.filter(ended_at__isnull=True, user__is_staff=True),
    ),
    (ConversationSession, "ended", lambda q: q.filter(duration_seconds__gte=0)),
    (
        ConversationSession,
        "reverse join repeats a row per message",
        lambda q: q.filter(messages__role__in=[MessageRole.USER, MessageRole.COACH]).order_by("id"),
    ),
    (
        ConversationSession,
        "reverse join distinct",
        lambda q: q.filter(messages__content__contains="ü").distinct().order_by("id"),
    ),
    (
        Scenario,
        "two reverse joins",
        lambda q: q.filter(sessions__messages__role=MessageRole.COACH, versions__version=1),
    ),
    (AuditEvent, "nulls and big ints", lambda q: q.all()),
    (AuditEvent, "null changes", lambda q: q.filter(changes__isnull=True)),
    (ErasureReceipt, "all", lambda q: q.all()),
]


@pytest.mark.parametrize(
    ("model", "shape"),
    [(m, s) for m, _, s in OTHER_SHAPES],
    ids=[f"{m.__name__}: {name}" for m, name, _ in OTHER_SHAPES],
)
async def test_other_models_query_shapes_give_tortoises_instances(
    model: type[Model], shape: Shape
) -> None:
    await fill()
    assert await assert_same(shape, model)


async def test_select_for_update_in_a_transaction_and_using_db_give_tortoises_instances() -> None:
    await fill()
    async with in_transaction("default") as conn:
        ours = await Message.filter(role=MessageRole.USER).select_for_update().using_db(conn)
        theirs = await tortoise(Message).filter(role=MessageRole.USER).select_for_update()
        assert [entries(o) for o in ours] == [entries(t) for t in theirs]
        await Message.filter(id=ours[0].id).using_db(conn).update(content="changed")
        (seen,) = await Message.filter(id=ours[0].id).using_db(conn)
        assert seen.content == "changed"


async def test_async_for_reverse_relations_and_fetch_related_give_tortoises_instances() -> None:
    rows = await fill()
    active: ConversationSession = rows["active"]
    theirs = [entries(m) for m in await tortoise(Message).filter(session_id=active.id)]
    assert [entries(m) async for m in Message.filter(session_id=active.id)] == theirs
    assert [entries(m) for m in await active.messages.all()] == theirs
    session = await ConversationSession.get(id=active.id)
    assert [entries(m) for m in await session.messages] == theirs
    session = await ConversationSession.get(id=active.id)
    await session.fetch_related("messages", "user")
    assert [entries(m) for m in session.messages] == theirs
    assert entries(session.user) == entries(await tortoise(User).get(id=active.user_id))  # type: ignore[attr-defined]
    users = await User.filter(id=active.user_id)  # type: ignore[attr-defined]
    await users[0].fetch_related("sessions__messages")
    assert [entries(m) for m in users[0].sessions[0].messages] == theirs


async def test_raw_and_bulk_created_rows_read_as_tortoise_reads_them() -> None:
    session = await make_session()
    await Message.bulk_create(
        [
            Message(session=session, role=MessageRole.USER, content=f"m{i}", metadata={"i": i})
            for i in range(5)
        ]
    )
    ours = await Message.all().order_by("id")
    theirs = await tortoise(Message).all().order_by("id")
    assert [entries(o) for o in ours] == [entries(t) for t in theirs]
    raw = await Message.raw('SELECT * FROM "message" ORDER BY id')
    assert [entries(r) for r in raw] == [entries(t) for t in theirs]


async def test_instances_read_fast_validate_save_and_refresh_as_tortoises_do() -> None:
    rows = await fill()
    active: ConversationSession = rows["active"]
    (ours,) = await ConversationSession.filter(id=active.id)
    theirs = await tortoise(ConversationSession).get(id=active.id)
    assert SessionRead.model_validate(ours) == SessionRead.model_validate(theirs)
    creator = pydantic_model_creator(Message, name="MessageProbe")
    for ours_m, theirs_m in zip(
        await Message.all().order_by("id"), await tortoise(Message).order_by("id"), strict=True
    ):
        assert MessageRead.model_validate(ours_m) == MessageRead.model_validate(theirs_m)
        ours_p = await creator.from_tortoise_orm(ours_m)
        theirs_p = await creator.from_tortoise_orm(theirs_m)
        assert ours_p.model_dump_json() == theirs_p.model_dump_json()
    (user,) = await User.filter(id=rows["admin"].id)
    assert UserRead.model_validate(user) == UserRead.model_validate(
        await tortoise(User).get(id=user.id)
    )
    # save: the version check works on an instance read fast, as on Tortoise's
    ours.update_from_dict({"status": SessionStatus.ABANDONED, "ended_at": datetime.now(UTC)})
    await ours.save()
    assert ours.version == 2
    theirs.total_messages = 99
    with pytest.raises(SessionChanged):
        await theirs.save()
    stale = (await ConversationSession.filter(id=active.id))[0]
    await stale.refresh_from_db()
    fresh = await tortoise(ConversationSession).get(id=active.id)
    assert entries(stale) == entries(fresh)
    (message,) = await Message.filter(content=HOSTILE)
    message.metadata["added"] = [1]
    await message.save(update_fields=["metadata"])
    assert (await tortoise(Message).get(id=message.id)).metadata["added"] == [1]
    await message.delete()
    assert not await Message.filter(id=message.id).exists()


async def test_concurrent_queries_of_many_shapes_share_the_builder_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await fill()
    monkeypatch.setattr(fast, "_BUILDERS", {})
    shapes = [
        (model, shape)
        for model, shape in [
            *((Message, s) for n, s in MESSAGE_SHAPES.items() if n not in RAISING),
            *((m, s) for m, _, s in OTHER_SHAPES),
        ]
    ]

    async def run(model: type[Model], shape: Shape) -> Any:
        return await shape(model.all())

    ours = await asyncio.gather(*(run(m, s) for _ in range(5) for m, s in shapes))
    theirs = [await s(tortoise(m)) for m, s in shapes]

    def flat(value: Any) -> Any:
        if isinstance(value, list):
            return [entries(v) if isinstance(v, Model) else v for v in value]
        if isinstance(value, dict):
            return {k: entries(v) for k, v in value.items()}
        return entries(value) if isinstance(value, Model) else value

    assert [flat(o) for o in ours] == [flat(t) for t in theirs] * 5


async def test_deeply_nested_json_raises_tortoises_field_error(raw: Any) -> None:
    """Text json.loads cannot decode for its depth (RecursionError, not a ValueError) fails as
    Tortoise fails: a FieldError, not a RecursionError from the fast converter."""
    deep = "[" * 5000 + "]" * 5000
    await raw.execute(
        "INSERT INTO audit_event (action, model, changes) VALUES ('view', 'x', $1::jsonb)",
        json.dumps({"a": json.loads("[" * 100 + "]" * 100)}),
    )
    await raw.execute(
        "INSERT INTO audit_event (action, model, changes) VALUES ('view', 'x', $1::jsonb)", deep
    )
    with pytest.raises(FieldError) as theirs:
        await tortoise(AuditEvent).all()
    with pytest.raises(FieldError) as ours:
        await AuditEvent.all()
    assert str(ours.value) == str(theirs.value)


async def test_no_stored_value_reaches_the_generated_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The builders' source holds attribute names and positions only: the hostile text stored
    in content, names, e-mails and JSON keys never appears in it."""
    await fill()
    sources: list[str] = []

    def spy(source: str, *args: Any) -> Any:
        sources.append(source)
        return compile(source, *args)

    monkeypatch.setattr(fast, "_BUILDERS", {})
    monkeypatch.setattr(fast, "compile", spy, raising=False)
    for model in (User, Scenario, ConversationSession, Message, AuditEvent, ErasureReceipt):
        assert await model.all()
    assert len(sources) == 6
    allowed = re.compile(r"[\w\s'\"(){}\[\]:=,.]+")
    for source in sources:
        assert allowed.fullmatch(source), source
        assert "import" not in source and "example" not in source and "ünï" not in source


async def test_json_scalars_and_nulls_stored_by_hand_read_as_tortoise_reads_them(raw: Any) -> None:
    """jsonb written by other services: scalars, JSON null, SQL NULL, huge and tiny numbers."""
    for text in ('"text"', "42", "null", "[1, 2]", "1e400", "-0", "123456789012345678901234567890"):
        await raw.execute(
            "INSERT INTO audit_event (action, model, changes) VALUES ('view', 'x', $1::jsonb)",
            text,
        )
    await raw.execute("INSERT INTO audit_event (action, model) VALUES ('erase', 'user')")
    await raw.execute(
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by) VALUES ($1, $2::jsonb, $3)",
        "a" * 64,
        json.dumps({"\u0001\u2028": 1, "k\n": [2**200, -1.5e-300]}),
        "cli",
    )
    for model in (AuditEvent, ErasureReceipt):
        ours = await model.all()
        theirs = await tortoise(model).all()
        assert [entries(o) for o in ours] == [entries(t) for t in theirs]
        assert len(ours) >= 1


async def test_prefetch_with_a_fast_queryset_gives_tortoises_related_instances() -> None:
    rows = await fill()
    ours = await ConversationSession.all().prefetch_related(
        Prefetch("messages", queryset=Message.filter(role__not=MessageRole.PARTNER).order_by("id"))
    )
    theirs = await tortoise(ConversationSession).prefetch_related(
        Prefetch(
            "messages",
            queryset=tortoise(Message).filter(role__not=MessageRole.PARTNER).order_by("id"),
        )
    )
    assert [[entries(m) for m in s.messages] for s in ours] == [
        [entries(m) for m in s.messages] for s in theirs
    ]
    assert any(s.id == rows["active"].id and len(s.messages) == 2 for s in ours)


async def test_instances_read_fast_bulk_update_and_get_or_create_as_tortoises_do() -> None:
    await fill()
    ours = await Message.all().order_by("id")
    for message in ours:
        message.content = f"edited {message.id}"
    await Message.bulk_update(ours, fields=["content"])
    assert [m.content for m in await tortoise(Message).order_by("id")] == [
        f"edited {m.id}" for m in ours
    ]
    async with in_transaction("default"):
        got, created = await Message.get_or_create(id=ours[0].id, defaults={"content": "unused"})
    assert not created and entries(got) == entries(await tortoise(Message).get(id=ours[0].id))
    locked = await Message.all().select_for_update().order_by("id").first()
    assert locked is not None and entries(locked) == entries(got)


async def test_a_union_of_fast_querysets_gives_tortoises_instances() -> None:
    await fill()

    def key(message: Message) -> int:
        return message.id

    ours = await Message.filter(role=MessageRole.USER).union(
        Message.filter(role=MessageRole.COACH), all=True
    )
    theirs = (
        await tortoise(Message)
        .filter(role=MessageRole.USER)
        .union(tortoise(Message).filter(role=MessageRole.COACH), all=True)
    )
    assert len(ours) == 3
    assert [entries(o) for o in sorted(ours, key=key)] == [
        entries(t) for t in sorted(theirs, key=key)
    ]
