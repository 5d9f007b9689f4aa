"""The Prisma package's tables and columns, and where each goes in coach-db's schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Kinds of column, each with the PostgreSQL types Prisma writes for it (format_type()).
INT: Final = "int"
TEXT: Final = "text"
TIME: Final = "time"
BOOL: Final = "bool"
JSON: Final = "json"
CHOICE: Final = "choice"  # String or a Prisma enum

ACCEPTED: Final = {
    INT: ("integer", "bigint"),
    TEXT: ("text", "character varying"),
    TIME: ("timestamp without time zone", "timestamp with time zone"),
    BOOL: ("boolean",),
    JSON: ("jsonb", "json"),
    CHOICE: ("text", "character varying"),  # or an enum type, told apart by pg_type.typtype
}


@dataclass(frozen=True)
class Column:
    prisma: str
    target: str
    kind: str
    optional: bool = False  # a variant of the Prisma schema may leave it out


@dataclass(frozen=True)
class Table:
    prisma: str
    target: str
    columns: tuple[Column, ...]


def _c(prisma: str, target: str, kind: str, optional: bool = False) -> Column:
    return Column(prisma, target, kind, optional)


# The Prisma package's schema.prisma (the models coach-db's mirror), in dependency order.
TABLES: Final = (
    Table(
        "Scenario",
        "scenario",
        (
            _c("id", "id", INT),
            _c("name", "name", TEXT),
            _c("slug", "slug", TEXT),
            _c("description", "description", TEXT),
            _c("partnerPersona", "partner_persona", TEXT),
            _c("partnerSystemPrompt", "partner_system_prompt", TEXT),
            _c("coachSystemPrompt", "coach_system_prompt", TEXT),
            _c("partnerModel", "partner_model", TEXT),
            _c("coachModel", "coach_model", TEXT),
            _c("isActive", "is_active", BOOL, optional=True),
            _c("createdAt", "created_at", TIME, optional=True),
            _c("updatedAt", "updated_at", TIME, optional=True),
        ),
    ),
    Table(
        "User",
        "user",
        (
            _c("id", "id", INT),
            _c("email", "email", TEXT),
            _c("username", "username", TEXT),
            _c("passwordHash", "password_hash", TEXT),
            _c("isStaff", "is_staff", BOOL, optional=True),
            _c("createdAt", "created_at", TIME, optional=True),
            _c("updatedAt", "updated_at", TIME, optional=True),
        ),
    ),
    Table(
        "ConversationSession",
        "conversation_session",
        (
            _c("id", "id", INT),
            _c("userId", "user_id", INT),
            _c("scenarioId", "scenario_id", INT),
            _c("status", "status", CHOICE),
            _c("startedAt", "started_at", TIME),
            _c("endedAt", "ended_at", TIME),
            # Derived values coach-db recomputes anyway: a schema without them adopts too.
            _c("totalMessages", "total_messages", INT, optional=True),
            _c("durationSeconds", "duration_seconds", INT, optional=True),
        ),
    ),
    Table(
        "Message",
        "message",
        (
            _c("id", "id", INT),
            _c("sessionId", "session_id", INT),
            _c("role", "role", CHOICE),
            _c("content", "content", TEXT),
            _c("timestamp", "timestamp", TIME),
            _c("audioUrl", "audio_url", TEXT, optional=True),
            _c("metadata", "metadata", JSON),
        ),
    ),
)
HISTORY: Final = "_prisma_migrations"
HISTORY_COLUMNS: Final = (
    "id",
    "checksum",
    "finished_at",
    "migration_name",
    "logs",
    "rolled_back_at",
    "started_at",
    "applied_steps_count",
)
# Where adoption keeps the Prisma package's tables (the history always; the data on request).
ARCHIVE: Final = "prisma_archive"
