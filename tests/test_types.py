"""Generated Pydantic types: shapes, nesting, no password_hash, and real validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from coach_db import MessageRole, SessionStatus, User
from coach_db.types import (
    MessageCreate,
    MessageRead,
    ScenarioCreate,
    ScenarioRead,
    SessionRead,
    UserCreate,
    UserRead,
    UserWithSessions,
)
from tests.factories import make_message, make_scenario, make_session, make_user

ALL_TYPES = [
    UserRead,
    UserCreate,
    ScenarioRead,
    ScenarioCreate,
    SessionRead,
    MessageRead,
    MessageCreate,
    UserWithSessions,
]


def test_password_hash_is_in_no_type() -> None:
    for model in ALL_TYPES:
        schema = str(model.model_json_schema())
        assert "password_hash" not in schema, model.__name__


def test_type_names_are_unique_for_openapi() -> None:
    names = [model.__name__ for model in ALL_TYPES]
    assert len(set(names)) == len(names)
    assert names == [
        "UserRead",
        "UserCreate",
        "ScenarioRead",
        "ScenarioCreate",
        "SessionRead",
        "MessageRead",
        "MessageCreate",
        "UserWithSessions",
    ]


async def test_user_read_from_queryset_without_password_hash() -> None:
    await make_user(email="a@example.com", password_hash="$argon2id$secret")
    [read] = await UserRead.from_queryset(User.all())
    dumped = read.model_dump()
    assert dumped["email"] == "a@example.com"
    assert "password_hash" not in dumped
    assert "$argon2id$secret" not in read.model_dump_json()


async def test_session_read_carries_foreign_key_ids() -> None:
    session = await make_session(status=SessionStatus.COMPLETED)
    read = await SessionRead.from_tortoise_orm(session)
    assert read.model_dump()["status"] == SessionStatus.COMPLETED
    assert read.model_dump()["user_id"] == session.user.id


async def test_user_with_sessions_nests_scenario_and_messages() -> None:
    user = await make_user(password_hash="$argon2id$secret")
    scenario = await make_scenario(name="Difficult Coworker")
    session = await make_session(user=user, scenario=scenario)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    await make_message(session=session, content="second", timestamp=t0.replace(minute=2))
    await make_message(
        session=session,
        role=MessageRole.COACH,
        content="first",
        timestamp=t0.replace(minute=1),
        metadata={"tokens": 7},
    )
    other = await make_session(scenario=scenario)  # another user's: must not appear

    result = (await UserWithSessions.from_tortoise_orm(user)).model_dump()

    assert "password_hash" not in result
    assert [s["id"] for s in result["sessions"]] == [session.id]
    assert other.id not in [s["id"] for s in result["sessions"]]
    [nested] = result["sessions"]
    assert nested["scenario"]["name"] == "Difficult Coworker"
    assert [m["content"] for m in nested["messages"]] == ["first", "second"]
    assert nested["messages"][0]["role"] == MessageRole.COACH
    assert nested["messages"][0]["metadata"] == {"tokens": 7}
    assert "sessions" not in nested["scenario"]  # no cycles back up the tree


async def test_message_read_round_trips_to_json() -> None:
    message = await make_message(metadata={"latency_ms": 120})
    read = await MessageRead.from_tortoise_orm(message)
    assert MessageRead.model_validate_json(read.model_dump_json()) == read


async def test_scenario_read_from_orm_object() -> None:
    read = ScenarioRead.model_validate(await make_scenario(slug="s-1"), from_attributes=True)
    assert read.model_dump()["slug"] == "s-1"


def test_user_create_accepts_valid_input_and_lowercases_email() -> None:
    user = UserCreate(email="New@Example.com", username="New", password="long enough")
    assert user.email == "new@example.com"
    assert user.password is not None and user.password.get_secret_value() == "long enough"
    assert "long enough" not in repr(user)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"email": "not-an-email", "username": "x"}, "valid email address"),
        ({"email": "a@example.com", "username": ""}, "at least 1 character"),
        ({"email": "a@example.com", "username": "x", "password": "short"}, "at least 8"),
    ],
)
def test_user_create_rejects_bad_input_clearly(payload: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        UserCreate(**payload)


def _scenario(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "N",
        "slug": "ok-slug",
        "description": "d",
        "partner_persona": "p",
        "partner_system_prompt": "psp",
        "coach_system_prompt": "csp",
        "partner_model": "m",
        "coach_model": "m",
    }
    return values | overrides


@pytest.mark.parametrize("slug", ["", "Bad Slug", "UPPER", "end-"])
def test_scenario_create_rejects_bad_slugs(slug: str) -> None:
    with pytest.raises(ValidationError, match="slug"):
        ScenarioCreate(**_scenario(slug=slug))


def test_scenario_create_accepts_a_good_slug() -> None:
    assert ScenarioCreate(**_scenario(slug="angry-uncle-2")).model_dump()["is_active"] is True


def test_message_create_rejects_unknown_role_and_empty_content() -> None:
    with pytest.raises(ValidationError, match="'user', 'partner' or 'coach'"):
        MessageCreate(role="narrator", content="x")
    with pytest.raises(ValidationError, match="at least 1 character"):
        MessageCreate(role="user", content="")
    ok = MessageCreate(role="partner", content="hi")
    assert ok.role is MessageRole.PARTNER and ok.metadata == {}


def test_session_status_is_validated_in_read_types() -> None:
    with pytest.raises(ValidationError, match="'active', 'completed' or 'abandoned'"):
        SessionRead.model_validate(
            {
                "id": 1,
                "status": "paused",
                "started_at": datetime.now(UTC),
                "total_messages": 0,
                "user_id": 1,
                "scenario_id": 1,
            }
        )


async def test_fastapi_routes_take_create_types_and_return_orm_rows_as_read_types() -> None:
    """The README's routes: the session id comes from the path, not the MessageCreate body."""
    from fastapi import FastAPI, HTTPException
    from httpx import ASGITransport, AsyncClient

    from coach_db import NotFound, Scenario, SessionNotActive, add_message

    app = FastAPI()

    @app.get("/scenarios", response_model=list[ScenarioRead])
    async def scenarios() -> list[Scenario]:
        return await Scenario.filter(is_active=True).order_by("name")

    @app.post("/sessions/{session_id}/messages", response_model=MessageRead, status_code=201)
    async def post_message(session_id: int, body: MessageCreate) -> object:
        try:
            return await add_message(session_id, body.role, body.content, body.metadata)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except SessionNotActive as exc:
            raise HTTPException(409, str(exc)) from exc

    b = await make_scenario(name="B", slug="b-1")
    await make_scenario(name="A", slug="a-1")
    await make_scenario(name="Off", slug="off", is_active=False)
    session = await make_session(scenario=b)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        listed = await client.get("/scenarios")
        posted = await client.post(
            f"/sessions/{session.id}/messages", json={"role": "user", "content": "Hi!"}
        )
        refused = await client.post(
            f"/sessions/{session.id}/messages",
            json={"role": "user", "content": "Hi!", "session_id": session.id},
        )
    assert listed.status_code == 200, listed.text
    assert [s["slug"] for s in listed.json()] == ["a-1", "b-1"]
    assert set(listed.json()[0]) == set(ScenarioRead.model_fields)
    assert posted.status_code == 201, posted.text
    assert posted.json()["session_id"] == session.id
    assert posted.json()["content"] == "Hi!"
    assert refused.status_code == 422  # the body has no session_id: the path names the session


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"content": "x" * 32_001}, "at most 32000 characters"),
        ({"metadata": {"pad": "x" * 40_000}}, "metadata is larger than 32,768 bytes"),
        ({"metadata": {"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}, "nested more than 16 levels"),
        ({"metadata": {"n": "\x00"}}, "NUL character"),
    ],
)
def test_message_create_enforces_the_message_limits(payload: dict[str, Any], message: str) -> None:
    """The same limits as add_message (coach_db.limits), as validation errors of the type."""
    with pytest.raises(ValidationError, match=message):
        MessageCreate.model_validate({"role": "user", "content": "ok"} | payload)
    assert MessageCreate.model_validate({"role": "user", "content": "x" * 32_000})
