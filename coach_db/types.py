"""Pydantic types generated from the Tortoise models, for APIs and services.

Turn ORM rows into them with the generated helpers, for example
``await SessionRead.from_queryset(ConversationSession.filter(user=user))`` or
``await UserWithSessions.from_tortoise_orm(user)`` (which fetches the nested relations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import EmailStr, Field, SecretStr, field_validator
from tortoise import Tortoise
from tortoise.contrib.pydantic import PydanticModel, pydantic_model_creator

from coach_db.config import APP_LABEL, MODELS_MODULE
from coach_db.models import (
    SLUG_PATTERN,
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
)

# Relations are silently missing from the generated types unless the models are initialised
# first; this only wires the models together and never connects.
Tortoise.init_models([MODELS_MODULE], APP_LABEL)

_SESSION_FIELDS = ("user", "scenario", "messages")

if TYPE_CHECKING:  # mypy sees plain PydanticModel subclasses; the fields come at run time.
    UserRead = PydanticModel
    ScenarioRead = PydanticModel
    SessionRead = PydanticModel
    MessageRead = PydanticModel
    UserWithSessions = PydanticModel
    _UserCreateBase = PydanticModel
    _ScenarioCreateBase = PydanticModel
    _MessageCreateBase = PydanticModel
else:
    UserRead = pydantic_model_creator(User, name="UserRead", exclude=("sessions",))
    ScenarioRead = pydantic_model_creator(Scenario, name="ScenarioRead", exclude=("sessions",))
    SessionRead = pydantic_model_creator(
        ConversationSession,
        name="SessionRead",
        exclude=_SESSION_FIELDS,
        include=(),
    )
    MessageRead = pydantic_model_creator(Message, name="MessageRead", exclude=("session",))
    UserWithSessions = pydantic_model_creator(
        User,
        name="UserWithSessions",
        exclude=(
            "sessions.user",
            "sessions.scenario.sessions",
            "sessions.messages.session",
        ),
    )
    _UserCreateBase = pydantic_model_creator(
        User, name="_UserCreateBase", exclude_readonly=True, exclude=("sessions", "created_at")
    )
    _ScenarioCreateBase = pydantic_model_creator(
        Scenario, name="_ScenarioCreateBase", exclude_readonly=True, exclude=("sessions",)
    )
    _MessageCreateBase = pydantic_model_creator(
        Message, name="_MessageCreateBase", exclude_readonly=True, exclude=("session",)
    )


class UserCreate(_UserCreateBase):
    """A new user: a valid e-mail and, unless they sign in through SAML, a password."""

    email: EmailStr
    username: str = Field(min_length=1, max_length=100)
    password: SecretStr | None = Field(default=None, min_length=8)
    is_staff: bool = False

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class ScenarioCreate(_ScenarioCreateBase):
    """A new scenario; the slug must be URL-safe."""

    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=100, pattern=SLUG_PATTERN)
    is_active: bool = True


class MessageCreate(_MessageCreateBase):
    """A new message in a session (the session id is given separately)."""

    role: MessageRole
    content: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    audio_url: str | None = Field(default=None, max_length=2048)


__all__ = [
    "MessageCreate",
    "MessageRead",
    "MessageRole",
    "ScenarioCreate",
    "ScenarioRead",
    "SessionRead",
    "SessionStatus",
    "UserCreate",
    "UserRead",
    "UserWithSessions",
]
