"""What the Pydantic types are: pydantic_model_creator calls that `coach-db generate` renders.

``coach_db/types.py`` is generated from ``reference_types()`` as ordinary classes, so type
checkers see every field; ``tests/test_codegen.py`` compares the two field by field and JSON
Schema by JSON Schema. Change a type here (or a model), then run ``coach-db generate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, EmailStr, Field, SecretStr

from coach_db.limits import MAX_CONTENT_CHARS
from coach_db.models import SLUG_PATTERN, MessageRole
from coach_db.validation import lowercase, metadata_within_limits

if TYPE_CHECKING:
    from tortoise.contrib.pydantic import PydanticModel


def reference_types() -> dict[str, type[PydanticModel]]:
    """The types as pydantic_model_creator builds them at run time, by name, in output order."""
    from tortoise import Tortoise
    from tortoise.contrib.pydantic import pydantic_model_creator

    from coach_db.config import APP_LABEL, MODELS_MODULE
    from coach_db.models import ConversationSession, Message, Scenario, ScenarioVersion, User

    # Relations are silently missing from the created types unless the models are wired first.
    Tortoise.init_models([MODELS_MODULE], APP_LABEL)

    user_read = pydantic_model_creator(User, name="UserRead", exclude=("sessions",))
    scenario_read = pydantic_model_creator(
        Scenario, name="ScenarioRead", exclude=("sessions", "versions")
    )
    scenario_version_read = pydantic_model_creator(
        ScenarioVersion, name="ScenarioVersionRead", exclude=("scenario", "sessions")
    )
    session_read = pydantic_model_creator(
        ConversationSession,
        name="SessionRead",
        exclude=("user", "scenario", "scenario_version", "messages"),
    )
    message_read = pydantic_model_creator(Message, name="MessageRead", exclude=("session",))
    user_with_sessions = pydantic_model_creator(
        User,
        name="UserWithSessions",
        exclude=(
            "sessions.user",
            "sessions.version",  # a token for writing a session, not history
            "sessions.scenario.sessions",
            "sessions.scenario.versions",
            "sessions.scenario_version",  # its id is there; the snapshot is ScenarioVersionRead
            "sessions.messages.session",
        ),
    )

    user_base = pydantic_model_creator(
        User, name="UserCreate", exclude_readonly=True, exclude=("sessions", "created_at")
    )
    scenario_base = pydantic_model_creator(
        Scenario, name="ScenarioCreate", exclude_readonly=True, exclude=("sessions", "versions")
    )
    message_base = pydantic_model_creator(
        Message, name="MessageCreate", exclude_readonly=True, exclude=("session", "session_id")
    )

    class UserCreate(user_base):  # type: ignore[misc,valid-type]  # built at run time
        """A new user: a valid e-mail and, unless they sign in through SAML, a password."""

        email: Annotated[EmailStr, AfterValidator(lowercase)]
        username: str = Field(min_length=1, max_length=100)
        password: SecretStr | None = Field(default=None, min_length=8)
        is_staff: bool = False

    class ScenarioCreate(scenario_base):  # type: ignore[misc,valid-type]
        """A new scenario; the slug must be URL-safe."""

        name: str = Field(min_length=1, max_length=200)
        slug: str = Field(min_length=1, max_length=100, pattern=SLUG_PATTERN)
        is_active: bool = True

    class MessageCreate(message_base):  # type: ignore[misc,valid-type]
        """A new message; its session comes from elsewhere (POST /sessions/{id}/messages)."""

        role: MessageRole
        content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
        metadata: Annotated[dict[str, Any], AfterValidator(metadata_within_limits)] = Field(
            default_factory=dict
        )
        audio_url: str | None = Field(default=None, max_length=2048)

    return {
        "UserRead": user_read,
        "UserCreate": UserCreate,
        "ScenarioRead": scenario_read,
        "ScenarioCreate": ScenarioCreate,
        "ScenarioVersionRead": scenario_version_read,
        "SessionRead": session_read,
        "MessageRead": message_read,
        "MessageCreate": MessageCreate,
        "UserWithSessions": user_with_sessions,
    }
