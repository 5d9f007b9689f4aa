"""Round trips, defaults, relations and delete rules of the four models through the ORM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tortoise.exceptions import FieldError, IntegrityError, OperationalError, ValidationError

from coach_db import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
)
from tests.factories import make_message, make_scenario, make_session, make_user


async def test_user_round_trip_with_defaults() -> None:
    user = await User.create(email="ada@example.com", username="Ada", password_hash="h")
    loaded = await User.get(id=user.id)
    assert (loaded.email, loaded.username, loaded.password_hash) == ("ada@example.com", "Ada", "h")
    assert loaded.is_staff is False
    assert loaded.created_at.tzinfo is not None
    assert loaded.updated_at >= loaded.created_at
    assert str(loaded) == "ada@example.com"


async def test_user_without_password_hash_is_allowed_for_saml() -> None:
    user = await make_user(password_hash=None)
    assert (await User.get(id=user.id)).password_hash is None


async def test_updated_at_moves_on_save() -> None:
    user = await make_user()
    first = user.updated_at
    user.username = "Renamed"
    await user.save()
    assert (await User.get(id=user.id)).updated_at > first


async def test_scenario_round_trip_and_active_filter() -> None:
    active = await make_scenario(name="Angry Uncle at Thanksgiving", slug="angry-uncle")
    await make_scenario(is_active=False)
    loaded = await Scenario.get(slug="angry-uncle")
    assert loaded.name == "Angry Uncle at Thanksgiving"
    assert loaded.is_active is True
    assert [s.id for s in await Scenario.filter(is_active=True)] == [active.id]
    assert str(loaded) == "Angry Uncle at Thanksgiving"


async def test_session_round_trip_with_defaults() -> None:
    session = await make_session()
    loaded = await ConversationSession.get(id=session.id).prefetch_related("user", "scenario")
    assert loaded.status is SessionStatus.ACTIVE
    assert loaded.total_messages == 0
    assert loaded.ended_at is None and loaded.duration_seconds is None
    assert loaded.user.id == session.user.id
    assert loaded.scenario.id == session.scenario.id


async def test_session_status_round_trips_as_enum() -> None:
    session = await make_session(status=SessionStatus.ABANDONED)
    assert (await ConversationSession.get(id=session.id)).status is SessionStatus.ABANDONED


async def test_message_round_trip_with_json_metadata_and_bigint_id() -> None:
    metadata = {"tokens": {"in": 12, "out": 40}, "latency_ms": 812.5, "model": "claude", "ok": True}
    message = await make_message(
        role=MessageRole.PARTNER, content="Well, actually…", metadata=metadata
    )
    loaded = await Message.get(id=message.id)
    assert loaded.role is MessageRole.PARTNER
    assert loaded.content == "Well, actually…"
    assert loaded.metadata == metadata
    assert loaded.audio_url is None
    assert isinstance(loaded.timestamp, datetime)
    big = await make_message(id=2**40, session=await message.session)
    assert (await Message.get(id=2**40)).id == big.id


async def test_message_metadata_defaults_to_empty_object() -> None:
    message = await make_message()
    assert (await Message.get(id=message.id)).metadata == {}


async def test_messages_of_a_session_come_in_time_order() -> None:
    session = await make_session()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, minute in enumerate([3, 1, 2]):
        await make_message(session=session, content=f"m{i}", timestamp=t0.replace(minute=minute))
    contents = [m.content for m in await session.messages.all()]
    assert contents == ["m1", "m2", "m0"]


async def test_reverse_relations_are_named_sessions_and_messages() -> None:
    message = await make_message()
    session = await message.session
    user = await session.user
    scenario = await session.scenario
    assert [s.id for s in await user.sessions.all()] == [session.id]
    assert [s.id for s in await scenario.sessions.all()] == [session.id]
    assert [m.id for m in await session.messages.all()] == [message.id]


async def test_user_sessions_come_newest_first() -> None:
    user = await make_user()
    scenario = await make_scenario()
    old = await make_session(user=user, scenario=scenario)
    new = await make_session(user=user, scenario=scenario)
    assert [s.id for s in await user.sessions.all()] == [new.id, old.id]


async def test_duplicate_email_is_rejected_case_insensitively() -> None:
    await make_user(email="Test@Example.com")
    with pytest.raises(IntegrityError, match="email"):
        await make_user(email="test@example.com")
    assert await User.filter(email="TEST@example.COM").count() == 1


async def test_email_is_stored_lower_case_and_found_in_any_case() -> None:
    user = await make_user(email="  Mixed.Case@Example.COM ")
    assert (await User.get(id=user.id)).email == "mixed.case@example.com"
    assert (await User.get(email="MIXED.case@example.com")).id == user.id


async def test_duplicate_slug_is_rejected() -> None:
    await make_scenario(slug="difficult-coworker")
    with pytest.raises(IntegrityError, match="slug"):
        await make_scenario(slug="difficult-coworker")


@pytest.mark.parametrize("slug", ["Has-Caps", "with space", "trailing-", "-leading", "a--b", ""])
async def test_invalid_slug_is_rejected_by_the_orm(slug: str) -> None:
    with pytest.raises(ValidationError, match="slug"):
        await make_scenario(slug=slug)
    assert await Scenario.all().count() == 0


async def test_unknown_status_is_rejected_by_the_orm() -> None:
    with pytest.raises(ValueError, match="'paused' is not a valid SessionStatus"):
        await make_session(status="paused")


async def test_deleting_a_user_deletes_their_sessions_and_messages() -> None:
    message = await make_message()
    session = await message.session
    await (await session.user).delete()
    assert await ConversationSession.filter(id=session.id).count() == 0
    assert await Message.filter(id=message.id).count() == 0
    assert await Scenario.filter(id=session.scenario_id).count() == 1  # type: ignore[attr-defined]


async def test_a_scenario_with_sessions_cannot_be_deleted() -> None:
    session = await make_session()
    scenario = await session.scenario
    with pytest.raises((IntegrityError, OperationalError)):
        await scenario.delete()
    assert await Scenario.filter(id=scenario.id).count() == 1
    scenario.is_active = False
    await scenario.save()
    assert await Scenario.filter(is_active=True).count() == 0


async def test_a_scenario_without_sessions_can_be_deleted() -> None:
    scenario = await make_scenario()
    await scenario.delete()
    assert await Scenario.all().count() == 0


async def test_deleting_a_session_deletes_its_messages() -> None:
    message = await make_message()
    await (await message.session).delete()
    assert await Message.all().count() == 0


async def test_a_misspelt_filter_fails_at_run_time_with_the_field_name() -> None:
    with pytest.raises(FieldError, match="is_activ"):
        await Scenario.filter(is_activ=True)
