"""coach-db: the shared async database layer of Conversation Coach."""

from coach_db.db import close_db, connect, init_db, lifespan
from coach_db.errors import (
    CoachDbError,
    DatabaseMissing,
    DatabaseUnreachable,
    DatabaseUrlInvalid,
    DatabaseUrlMissing,
    MigrationsNotApplied,
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
    "ConversationSession",
    "DatabaseMissing",
    "DatabaseUnreachable",
    "DatabaseUrlInvalid",
    "DatabaseUrlMissing",
    "Message",
    "MessageRole",
    "MigrationsNotApplied",
    "Scenario",
    "SessionStatus",
    "User",
    "close_db",
    "connect",
    "init_db",
    "lifespan",
]
