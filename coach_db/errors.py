"""Errors a newcomer will meet, each saying what happened and what to do next."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

# The one fix every command offers for a database without (all) the migrations.
APPLY_MIGRATIONS = "apply the migrations with `coach-db deploy`"


class CoachDbError(Exception):
    """Base class of every coach_db error, each explained in one message."""


class DatabaseUrlMissing(CoachDbError):
    def __init__(self) -> None:
        super().__init__(
            "DATABASE_URL is not set. Set it to your PostgreSQL server, for example "
            "DATABASE_URL=postgres://user:password@localhost:5432/coach, "
            "or run `coach-db studio`, which starts an embedded server."
        )


class DatabaseUrlInvalid(CoachDbError):
    def __init__(self, masked_url: str, reason: str, variable: str = "DATABASE_URL") -> None:
        super().__init__(
            f"{variable} {masked_url!r} is not a valid PostgreSQL URL: {reason}. "
            "Expected postgres://user:password@host:5432/database"
        )


class DatabaseUnreachable(CoachDbError):
    def __init__(self, host: str, port: int | str, masked_url: str, reason: str) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"Can't reach the database server at {host}:{port} ({masked_url}): {reason}. "
            "Is PostgreSQL running there, and does DATABASE_URL point at it?"
        )


class DatabaseAccessDenied(CoachDbError):
    def __init__(self, host: str, port: int | str, masked_url: str, reason: str) -> None:
        super().__init__(
            f"The database server at {host}:{port} refused the login ({masked_url}): {reason}. "
            "Check the user name and password in DATABASE_URL."
        )


class DatabaseMissing(CoachDbError):
    def __init__(self, database: str, host: str, port: int | str) -> None:
        super().__init__(
            f'Database "{database}" does not exist on {host}:{port}. '
            f'Create it (createdb "{database}" or CREATE DATABASE "{database}"), '
            f"then {APPLY_MIGRATIONS}."
        )


class MigrationsNotApplied(CoachDbError):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"The database has no table {', '.join(repr(t) for t in missing)} (its migrations "
            f"are not applied): {APPLY_MIGRATIONS} and try again."
        )


class PendingMigrations(CoachDbError):
    def __init__(self, pending: list[str]) -> None:
        self.pending = pending
        super().__init__(
            f"The database is behind the committed migrations ({', '.join(pending)}). "
            f"First {APPLY_MIGRATIONS}: migrating against a database that is behind can make "
            "Aerich rewrite committed migration files."
        )


class MigrationsMissing(CoachDbError):
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(
            f"No migration files in {folder}: this coach-db was installed without its "
            "migrations, or the folder was deleted. Nothing was applied. Reinstall coach-db "
            "(its wheel carries them in coach_db/migrations/), or run from a checkout of the "
            "repository."
        )


class DeployLockTimeout(CoachDbError):
    def __init__(self, waited: float, holder: str) -> None:
        self.waited = waited
        super().__init__(
            f"Waited {waited:g} s for the migration lock, held by {holder}: another "
            "`coach-db deploy` is still migrating, or hangs. Nothing was applied. Let it finish "
            "(or end it: SELECT pg_terminate_backend(pid)), then deploy again; "
            "DEPLOY_LOCK_TIMEOUT or --lock-timeout sets the wait."
        )


# --- conversations (coach_db.conversations): each refusal writes nothing ---------------------


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "an unknown time"


class ConversationError(CoachDbError):
    """Base class: a conversation operation was refused and nothing was written."""


class NotFound(ConversationError):
    def __init__(self, what: str, id: int) -> None:
        self.what = what
        self.id = id
        super().__init__(f"{what} {id} does not exist (was it deleted?).")


class ScenarioInactive(ConversationError):
    def __init__(self, scenario_id: int, slug: str) -> None:
        self.scenario_id = scenario_id
        super().__init__(
            f"Scenario {slug!r} (id {scenario_id}) is inactive: it is no longer offered, so no "
            "new session can start in it. Pick an active scenario, or reactivate this one."
        )


class SessionNotActive(ConversationError):
    def __init__(
        self, session_id: int, status: str | None = None, ended_at: datetime | None = None
    ) -> None:
        self.session_id = session_id
        self.status = status
        state = f"is {status} (ended at {_when(ended_at)})" if status else "has just ended"
        super().__init__(
            f"Session {session_id} {state}: messages can only be added to an active session. "
            "Start a new one with start_session()."
        )


class SessionAlreadyEnded(ConversationError):
    def __init__(
        self, session_id: int, status: str, ended_at: datetime | None, requested: str
    ) -> None:
        self.session_id = session_id
        self.status = status
        super().__init__(
            f"Session {session_id} already ended as {status} at {_when(ended_at)}; "
            f"it cannot end again as {requested}."
        )


class InvalidIdempotencyKey(ConversationError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Idempotency key refused, nothing was written: {reason}.")


class IdempotencyKeyReused(ConversationError):
    """A retry's key names a row stored with other values: a caller bug, never a retry."""

    def __init__(self, what: str, key: str, stored_id: int, differs: str) -> None:
        self.what = what
        self.key = key
        self.stored_id = stored_id
        shown = key if len(key) <= 60 else key[:60] + "…"
        super().__init__(
            f"The idempotency key {shown!r} was already used for {what} {stored_id}, stored with "
            f"another {differs}: nothing was written. A retry must send the same values as the "
            "first call; a new message or session needs a new key."
        )


class InvalidMessage(ConversationError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Message refused, nothing was written: {reason}.")


# --- a lost connection (a PostgreSQL restart, failover, network cut) -------------------------


class DatabaseConnectionLost(CoachDbError):
    """The connection to PostgreSQL broke or could not be made while an operation ran."""

    def __init__(self, operation: str, reason: str, *, maybe_written: bool) -> None:
        self.operation = operation
        self.reason = reason
        self.maybe_written = maybe_written
        outcome = (
            "the statement was sent, so it may or may not have been written: retry with the "
            "same idempotency_key, which returns the stored row if it was (without a key, "
            "check before retrying, for a message with transcript())"
            if maybe_written
            else "nothing was written; retry once the server answers again"
        )
        super().__init__(
            f"Lost the connection to the database during {operation} ({reason}): {outcome}."
        )


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 8 and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def connection_lost(exc: BaseException) -> bool:
    """True if `exc` (or what it wraps) says the connection to PostgreSQL is gone or refused.

    asyncpg raises these unwrapped through Tortoise (it translates only data and integrity
    errors): a closed connection (ConnectionDoesNotExistError, InterfaceError "... closed"), the
    server shutting down or starting (57P01-57P03), a refused or reset socket, or a pooled
    connection asyncpg left half-open when the server went away. During a failover also: no
    host of a multi-host URL accepts writes yet (TargetServerAttributeNotMatched), and a
    connection to a node that is no longer the primary, which refuses writes as "read-only"
    (25006; read_only_refusal(): nothing was written, and the pool must drop it).
    """
    import asyncpg.exceptions as pg

    shutdown = (pg.AdminShutdownError, pg.CrashShutdownError, pg.CannotConnectNowError)
    failover = (pg.TargetServerAttributeNotMatched, pg.ReadOnlySQLTransactionError)
    for item in _chain(exc):
        if isinstance(item, (pg.PostgresConnectionError, ConnectionError, *shutdown, *failover)):
            return True
        if isinstance(item, pg.InterfaceError) and "closed" in str(item):
            return True
        # A connection whose handshake the restart cut off is left half-open by asyncpg; its
        # next statement fails before anything is sent ("cannot switch to state ...").
        if isinstance(item, pg.InternalClientError) and "cannot switch to state" in str(item):
            return True
        if isinstance(item, OSError) and "Connect call failed" in str(item):
            return True
    return False


def never_sent(exc: BaseException) -> bool:
    """True if the lost connection failed while connecting, so no statement reached the server."""
    import asyncpg.exceptions as pg

    connecting = (
        ConnectionRefusedError,
        pg.TargetServerAttributeNotMatched,
        pg.CannotConnectNowError,
        pg.ClientCannotConnectError,
        pg.ConnectionRejectionError,
    )
    return any(
        isinstance(item, connecting)
        or (isinstance(item, OSError) and "Connect call failed" in str(item))
        for item in _chain(exc)
    )


def read_only_refusal(exc: BaseException) -> bool:
    """True if the server refused a write as read-only: it is a standby now (a demoted primary).

    The statement wrote nothing; the connection goes to the wrong node and must be replaced.
    """
    import asyncpg.exceptions as pg

    return any(isinstance(item, pg.ReadOnlySQLTransactionError) for item in _chain(exc))


class SessionChanged(ConversationError):
    """A save() of a session object read before someone else's write (optimistic concurrency)."""

    def __init__(self, session_id: int, version: int) -> None:
        self.session_id = session_id
        self.version = version
        super().__init__(
            f"Session {session_id} was changed by someone else since it was read (this copy is "
            f"version {version}): nothing was written. Read it again (refresh_from_db()), then "
            "redo the change."
        )
