"""The four tables of Conversation Coach and their enums."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic_core import from_json
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.fields.db_defaults import SqlDefault
from tortoise.indexes import Index
from tortoise.models import Model
from tortoise.validators import MinLengthValidator, RegexValidator

from coach_db.errors import SessionChanged
from coach_db.limits import MAX_IDEMPOTENCY_KEY_CHARS
from coach_db.queryset import FastManager

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# The database trigger's refusal of a write by a stale object (migration 3_…_invariants).
VERSION_CONSTRAINT = "conversation_session_version_current"
# Every default also lives in the database, so rows written by raw SQL or other services get it.
NOW = SqlDefault("CURRENT_TIMESTAMP")


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class MessageRole(StrEnum):
    USER = "user"
    PARTNER = "partner"
    COACH = "coach"


class StaffRole(StrEnum):
    """What a staff member may do in the studio, each role including the ones before it."""

    VIEWER = "viewer"  # reads everything, changes nothing
    EDITOR = "editor"  # also creates, edits and deletes scenarios, sessions and messages
    ADMIN = "admin"  # also manages users, staff and their roles


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    VIEW = "view"
    ERASE = "erase"


class EmailField(fields.CharField[str]):
    """A CharField that stores and compares e-mail addresses in lower case."""

    def to_db_value(self, value: Any, instance: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
        return super().to_db_value(value, instance)

    def to_python_value(self, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
        return super().to_python_value(value)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # Tortoise's own default, without orjson


def _json_loads(text: str | bytes) -> Any:
    """JSON text as json.loads reads it (integers of any size stay ints), 4x faster.

    pydantic-core's parser (Rust, already a dependency through pydantic) gives the same values
    as json.loads: big integers as int, floats correctly rounded, 1e400 as inf
    (tests/test_fast_reads.py compares them). orjson would read integers beyond 64 bits as floats.
    """
    return from_json(text)


def utc_datetime(**kwargs: Any) -> fields.DatetimeField[Any]:  # Any: nullable or not
    """A DatetimeField whose values are read as asyncpg decodes timestamptz: aware UTC datetimes.

    Tortoise runs DatetimeField.to_python_value on every value read, which only moves asyncpg's
    aware UTC datetime into the configured zone (UTC here, use_tz=True): the same instant and
    offset, at ~1 µs a value. skip_to_python_if_native is Tortoise's documented switch for
    types the driver already returns (its DateField and TimeField set it). An attribute of the
    field, not a subclass: Aerich describes fields by class name, and would see a type change.
    Values written through the ORM are converted as before (to_db_value is unchanged).
    """
    field = fields.DatetimeField(**kwargs)
    field.skip_to_python_if_native = True
    return field


class User(Model):
    """Someone who practises conversations (or, with is_staff, runs the studio)."""

    id = fields.IntField(primary_key=True)
    email = EmailField(
        max_length=254,
        unique=True,
        validators=[MinLengthValidator(3)],
        description="Unique, case-insensitive: stored in lower case",
    )
    username = fields.CharField(max_length=100, description="Display name")
    password_hash = fields.CharField(
        max_length=255, null=True, description="argon2id hash; NULL for SAML users"
    )
    is_staff = fields.BooleanField(
        default=False, db_default=False, description="May sign in to the studio"
    )
    role = fields.CharEnumField(
        StaffRole,
        default=StaffRole.VIEWER,
        db_default=StaffRole.VIEWER.value,
        description="What a staff member may do in the studio: viewer, editor or admin",
    )
    credentials_version = fields.IntField(
        default=1,
        db_default=1,
        description="Bumped by the database when password_hash, is_staff or role change",
    )
    created_at = utc_datetime(auto_now_add=True, db_default=NOW)
    updated_at = utc_datetime(auto_now=True, db_default=NOW)

    sessions: fields.ReverseRelation[ConversationSession]

    class Meta:
        table = "user"
        manager = FastManager()
        ordering = ["id"]

    class PydanticMeta:
        exclude = ("password_hash", "credentials_version")

    def __str__(self) -> str:
        return str(self.email)


class Scenario(Model):
    """A hard conversation to practise: who the partner plays and how the coach judges."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    slug = fields.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(SLUG_PATTERN, 0)],
        description="URL-safe: lowercase letters, digits and single hyphens",
    )
    description = fields.TextField()
    partner_persona = fields.TextField(description="Who the AI partner plays, in brief")
    partner_system_prompt = fields.TextField()
    coach_system_prompt = fields.TextField()
    partner_model = fields.CharField(max_length=100, description="Anthropic model id")
    coach_model = fields.CharField(max_length=100, description="Anthropic model id")
    is_active = fields.BooleanField(default=True, db_default=True, description="Offered to users")
    created_at = utc_datetime(auto_now_add=True, db_default=NOW)
    updated_at = utc_datetime(auto_now=True, db_default=NOW)

    sessions: fields.ReverseRelation[ConversationSession]
    versions: fields.ReverseRelation[ScenarioVersion]

    class Meta:
        table = "scenario"
        manager = FastManager()
        ordering = ["name"]
        indexes = [Index(fields=("is_active", "name"))]

    def __str__(self) -> str:
        return self.name


class ScenarioVersion(Model):
    """An immutable snapshot of a scenario's prompts and models, written by the database."""

    id = fields.IntField(primary_key=True)
    scenario: fields.ForeignKeyRelation[Scenario] = fields.ForeignKeyField(
        "models.Scenario", related_name="versions", on_delete=fields.CASCADE
    )
    version = fields.IntField(description="1, 2, ... per scenario")
    partner_persona = fields.TextField()
    partner_system_prompt = fields.TextField()
    coach_system_prompt = fields.TextField()
    partner_model = fields.CharField(max_length=100)
    coach_model = fields.CharField(max_length=100)
    created_at = utc_datetime(auto_now_add=True, db_default=NOW)

    sessions: fields.ReverseRelation[ConversationSession]

    class Meta:
        table = "scenario_version"
        manager = FastManager()
        ordering = ["scenario_id", "version"]
        unique_together = (("scenario", "version"),)

    def __str__(self) -> str:
        return f"Version {self.version} of scenario {self.scenario_id}"  # type: ignore[attr-defined]


class ConversationSession(Model):
    """One practice conversation of a user in a scenario."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    scenario: fields.ForeignKeyRelation[Scenario] = fields.ForeignKeyField(
        "models.Scenario", related_name="sessions", on_delete=fields.RESTRICT
    )
    scenario_version: fields.ForeignKeyRelation[ScenarioVersion] = fields.ForeignKeyField(
        "models.ScenarioVersion",
        related_name="sessions",
        on_delete=fields.RESTRICT,
        description="The prompts and models it ran with; the database fills it on insert",
    )
    status = fields.CharEnumField(
        SessionStatus, default=SessionStatus.ACTIVE, db_default=SessionStatus.ACTIVE.value
    )
    started_at = utc_datetime(auto_now_add=True, db_default=NOW)
    ended_at = utc_datetime(null=True)
    total_messages = fields.IntField(
        default=0, db_default=0, description="Number of messages, kept exact"
    )
    duration_seconds = fields.IntField(null=True, description="ended_at - started_at, seconds")
    version = fields.IntField(
        default=1,
        db_default=1,
        description="Bumped by the database on every write; a stale writer is refused",
    )
    idempotency_key = fields.CharField(
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        null=True,
        description="start_session()'s retry key: unique per user, a retry returns this row",
    )

    messages: fields.ReverseRelation[Message]

    class Meta:
        table = "conversation_session"
        manager = FastManager()
        ordering = ["-started_at", "-id"]
        # (started_at, id): the studio's newest-first session list reads it backwards.
        indexes = [Index(fields=("user_id", "started_at")), Index(fields=("started_at", "id"))]

    def __str__(self) -> str:
        return f"Session {self.id} ({self.status})"

    async def save(
        self,
        using_db: BaseDBAsyncClient | None = None,
        update_fields: Iterable[str] | None = None,
        force_create: bool = False,
        force_update: bool = False,
    ) -> None:
        """Tortoise's save(); an update also sends the version this object was read at.

        The database refuses it when the row has been written since (the trigger compares the
        versions and then bumps it): SessionChanged, nothing written. So a stale object cannot
        write an old status, end time or scenario over a newer one, whichever fields it lists.
        """
        updating = self._saved_in_db and not force_create and self.pk is not None
        if updating and update_fields is not None and "version" not in update_fields:
            update_fields = [*update_fields, "version"]
        try:
            await super().save(using_db, update_fields, force_create, force_update)
        except IntegrityError as exc:
            if getattr(exc.__cause__, "constraint_name", None) == VERSION_CONSTRAINT:
                raise SessionChanged(self.pk, self.version) from None
            raise
        if updating:
            self.version += 1  # what the trigger stored
        elif self.scenario_version_id is None:  # type: ignore[has-type]
            # The database chose the scenario's current version (migration 6): read it back,
            # so the object says which prompts the session runs with.
            self.scenario_version_id = await ConversationSession.get(
                pk=self.pk, using_db=using_db
            ).values_list("scenario_version_id", flat=True)


class Message(Model):
    """One turn of a conversation: the user, the AI partner, or the AI coach."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ConversationSession] = fields.ForeignKeyField(
        "models.ConversationSession", related_name="messages", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(MessageRole)
    content = fields.TextField()
    timestamp = utc_datetime(auto_now_add=True, db_default=NOW)
    audio_url = fields.CharField(max_length=2048, null=True, description="Future voice recording")
    metadata: dict[str, Any] = fields.JSONField(
        default=dict,
        db_default=SqlDefault("'{}'::jsonb"),
        description="JSON object: tokens, latency, model, ...",
        # Named, not Tortoise's default: that switches to orjson whenever it is installed (as
        # FastAPI's ORJSONResponse needs), and orjson reads integers beyond 64 bits as floats.
        encoder=_json_dumps,
        decoder=_json_loads,
    )
    idempotency_key = fields.CharField(
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        null=True,
        description="add_message()'s retry key: unique per session, a retry returns this row",
    )

    class Meta:
        table = "message"
        manager = FastManager()
        ordering = ["timestamp", "id"]
        # (timestamp, id): the studio's message list and the dashboard's latest message, which
        # otherwise scan and sort the whole table (1.3-1.8 s at 10M messages).
        indexes = [
            Index(fields=("session_id", "timestamp", "id")),
            Index(fields=("timestamp", "id")),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class AuditEvent(Model):
    """One thing a staff member did in the studio; the database refuses to change or delete it.

    No foreign keys: the trail outlives the rows and accounts it names. Only an erasure (the
    database function erase_person(), migration 8) may redact a row's values. The database also
    chains every row to the one before by a hash (columns outside the model; audit_chain.py).
    """

    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_default=NOW)
    actor_id = fields.IntField(null=True, description="Staff user id at the time (no FK)")
    actor_email = fields.CharField(
        max_length=254, null=True, description="Staff e-mail at the time; NULL once erased"
    )
    action = fields.CharEnumField(AuditAction)
    model = fields.CharField(max_length=50, description="Studio resource: user, scenario, ...")
    row_id = fields.BigIntField(null=True, description="Primary key of the row (no FK)")
    subject_id = fields.IntField(
        null=True,
        description="The person the row belongs to (user id, no FK); erasure sets it NULL",
    )
    changes: dict[str, Any] | None = fields.JSONField(
        null=True,
        description='{field: [before, after]}; passwords only as "changed"',
        encoder=_json_dumps,
        decoder=json.loads,
    )

    class Meta:
        table = "audit_event"
        manager = FastManager()
        ordering = ["-id"]
        # Every filter of the studio's audit list, newest first (keyset on id).
        indexes = [
            Index(fields=("model", "row_id", "id")),
            Index(fields=("actor_id", "id")),
            Index(fields=("subject_id", "id")),
            Index(fields=("action", "id")),
            Index(fields=("created_at", "id")),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.model} #{self.row_id}"


class ErasureReceipt(Model):
    """Proof that a person was erased, holding no personal data."""

    id = fields.IntField(primary_key=True)
    email_hash = fields.CharField(
        max_length=64, description="HMAC-SHA256 of the lower-case e-mail, this install's salt"
    )
    counts: dict[str, Any] = fields.JSONField(
        description="Rows deleted per table", encoder=_json_dumps, decoder=json.loads
    )
    erased_at = fields.DatetimeField(auto_now_add=True, db_default=NOW)
    erased_by = fields.CharField(max_length=300, description="Who ran it: staff e-mail or CLI")

    class Meta:
        table = "erasure_receipt"
        manager = FastManager()
        ordering = ["-id"]
        indexes = [Index(fields=("email_hash",))]

    def __str__(self) -> str:
        return f"Erasure {self.id}"
