"""coach-db: the shared async database layer of Conversation Coach."""

from typing import TYPE_CHECKING, Any

from coach_db.conversations import (
    add_message,
    end_session,
    start_session,
    transcript,
    user_history,
)
from coach_db.db import close_db, connect, init_db, lifespan, primary, transaction
from coach_db.errors import (
    CoachDbError,
    ConversationError,
    DatabaseConnectionLost,
    DatabaseMissing,
    DatabaseUnreachable,
    DatabaseUrlInvalid,
    DatabaseUrlMissing,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidMessage,
    MigrationsNotApplied,
    NotFound,
    ScenarioInactive,
    SessionAlreadyEnded,
    SessionChanged,
    SessionNotActive,
)
from coach_db.models import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    ScenarioVersion,
    SessionStatus,
    StaffRole,
    User,
)

if TYPE_CHECKING:
    from coach_db.cache import active_scenarios, invalidate_scenarios, scenario_by_slug

# The scenario cache needs Redis: imported on first use, so `import coach_db` loads no redis.
_CACHE_NAMES = {"active_scenarios", "invalidate_scenarios", "scenario_by_slug"}


def __getattr__(name: str) -> Any:
    if name in _CACHE_NAMES:
        from coach_db import cache

        return getattr(cache, name)
    raise AttributeError(f"module 'coach_db' has no attribute {name!r}")


__all__ = [
    "CoachDbError",
    "ConversationError",
    "ConversationSession",
    "DatabaseConnectionLost",
    "DatabaseMissing",
    "DatabaseUnreachable",
    "DatabaseUrlInvalid",
    "DatabaseUrlMissing",
    "IdempotencyKeyReused",
    "InvalidIdempotencyKey",
    "InvalidMessage",
    "Message",
    "MessageRole",
    "MigrationsNotApplied",
    "NotFound",
    "Scenario",
    "ScenarioInactive",
    "ScenarioVersion",
    "SessionAlreadyEnded",
    "SessionChanged",
    "SessionNotActive",
    "SessionStatus",
    "StaffRole",
    "User",
    "active_scenarios",
    "add_message",
    "close_db",
    "connect",
    "end_session",
    "init_db",
    "invalidate_scenarios",
    "lifespan",
    "primary",
    "scenario_by_slug",
    "start_session",
    "transaction",
    "transcript",
    "user_history",
]
