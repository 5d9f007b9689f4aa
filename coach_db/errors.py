"""Errors a newcomer will meet, each saying what to do next."""


class CoachDbError(Exception):
    """Base class: a problem with the database set-up, explained in one message."""


class DatabaseUrlMissing(CoachDbError):
    def __init__(self) -> None:
        super().__init__(
            "DATABASE_URL is not set. Set it to your PostgreSQL server, for example "
            "DATABASE_URL=postgres://user:password@localhost:5432/coach, "
            "or run `coach-db studio`, which starts an embedded server."
        )


class DatabaseUrlInvalid(CoachDbError):
    def __init__(self, masked_url: str, reason: str) -> None:
        super().__init__(
            f"DATABASE_URL {masked_url!r} is not a valid PostgreSQL URL: {reason}. "
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
            "then apply the migrations with `aerich upgrade`."
        )


class MigrationsNotApplied(CoachDbError):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"The database has no table {', '.join(repr(t) for t in missing)}: "
            "the migrations are not applied. Run `aerich upgrade` from the coach-db "
            "repository (with DATABASE_URL set) and try again."
        )


class PendingMigrations(CoachDbError):
    def __init__(self, pending: list[str]) -> None:
        self.pending = pending
        super().__init__(
            f"The database is behind the committed migrations ({', '.join(pending)}). "
            "Apply them first with `coach-db deploy` (or `aerich upgrade`): migrating against a "
            "database that is behind can make Aerich rewrite committed migration files."
        )
