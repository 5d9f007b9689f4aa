"""coach-db: the shared async database layer of Conversation Coach."""

from coach_db.conversations import (
    add_message,
    end_session,
    start_session,
    transcript,
    user_history,
)
from coach_db.db import close_db, connect, init_db, lifespan
from coach_db.errors import (
    CoachDbError,
    ConversationError,
    DatabaseConnectionLost,
    DatabaseMissing,
    DatabaseUnreachable,
    DatabaseUrlInvalid,
    DatabaseUrlMissing,
    InvalidMessage,
    MigrationsNotApplied,
    NotFound,
    ScenarioInactive,
    SessionAlreadyEnded,
    SessionNotActive,
)
from coach_db.models import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
)

__all__ = [
    "CoachDbError",
    "ConversationError",
    "ConversationSession",
    "DatabaseConnectionLost",
    "DatabaseMissing",
    "DatabaseUnreachable",
    "DatabaseUrlInvalid",
    "DatabaseUrlMissing",
    "InvalidMessage",
    "Message",
    "MessageRole",
    "MigrationsNotApplied",
    "NotFound",
    "Scenario",
    "ScenarioInactive",
    "SessionAlreadyEnded",
    "SessionNotActive",
    "SessionStatus",
    "User",
    "add_message",
    "close_db",
    "connect",
    "end_session",
    "init_db",
    "lifespan",
    "start_session",
    "transcript",
    "user_history",
]
