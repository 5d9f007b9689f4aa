"""`coach-db console-role`: the database role the studio's SQL console runs as.

A login role of its own (never SET ROLE from the studio's connection, which the statement
itself could undo with RESET ROLE): no superuser, no role memberships, nothing it owns, read
only by default, a short statement timeout, and SELECT on every column of the public schema
except the secret ones (password hashes, the erasure salt, anything named like a secret).
Run it again after a migration that adds tables or columns: grants are per column.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg
import typer
from rich.console import Console

from coach_db.config import database_url, mask_url, remember_secrets
from coach_db.errors import CoachDbError

# Columns the console never reads, by (table, column), and any column whose name says secret.
SECRET_COLUMNS = frozenset(
    {("user", "password_hash"), ("erasure_salt", "salt"), ("erasure_receipt", "email_hash")}
)
SECRET_NAME = re.compile(r"password|passwd|secret|token|salt|api_?key|private_?key|hmac")
# What the role may do at most, whatever a client sets (the studio sets tighter ones per query).
ROLE_SETTINGS = {
    "default_transaction_read_only": "on",
    "statement_timeout": "10s",
    "lock_timeout": "1s",
    "idle_in_transaction_session_timeout": "15s",
    "search_path": "public",
}
CONNECTION_LIMIT = 8
CONNECTION_OPTIONS = frozenset({"host", "sslmode", "sslrootcert", "sslcert", "sslkey"})
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

out = Console(soft_wrap=True, highlight=False)


def is_secret(table: str, column: str) -> bool:
    """Whether the console must not read this column."""
    return (table, column) in SECRET_COLUMNS or bool(SECRET_NAME.search(column.lower()))


def default_role(url: str) -> str:
    """`<database>_console`: one role per database, so two databases on a server never share
    (and reset) one password."""
    name = urlsplit(url).path.lstrip("/") or "coach"
    role = re.sub(r"[^a-z0-9_]", "_", name.lower())[:54] + "_console"
    return role if role[0].isalpha() or role[0] == "_" else f"_{role}"


def console_url(url: str, role: str, password: str) -> str:
    """The database URL with the console role's credentials instead of the owner's."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    # Connection options only: the pool sizes of DATABASE_URL are not the console's.
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k in CONNECTION_OPTIONS]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(kept)))


@dataclass
class Provisioned:
    role: str
    tables: int
    hidden: list[str]  # "table.column" the role cannot read


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def provision(conn: asyncpg.Connection, role: str, password: str) -> Provisioned:
    """Create (or tighten) `role` and grant it SELECT on the non-secret columns, in one
    transaction. `conn` is the database owner's (or a superuser's) connection."""
    if not _ROLE_NAME.fullmatch(role):
        raise CoachDbError(f"Role name {role!r}: lower-case letters, digits and _ only.")
    database = await conn.fetchval("SELECT current_database()")
    existing = await conn.fetchrow(
        "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication"
        " OR r.rolbypassrls AS privileged,"
        " EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member,"
        " EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = r.oid) AS has_members,"
        " r.rolname = current_user AS is_me"
        " FROM pg_roles r WHERE r.rolname = $1",
        role,
    )
    if existing is not None and any(existing.values()):
        raise CoachDbError(
            f"Role {role!r} exists and is not a plain login role (superuser, member or owner of "
            "other roles, or the role you connect as): choose another name with --role."
        )
    ident = _ident(role)
    attributes = (
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS "
        f"CONNECTION LIMIT {CONNECTION_LIMIT}"
    )
    async with conn.transaction():
        if existing is None:
            await conn.execute(f"CREATE ROLE {ident} {attributes}")
        else:
            await conn.execute(f"ALTER ROLE {ident} {attributes}")
        # A literal, not a parameter (utility statements take none); quote_literal escapes it.
        literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
        await conn.execute(f"ALTER ROLE {ident} PASSWORD {literal}")
        for name, value in ROLE_SETTINGS.items():
            await conn.execute(f"ALTER ROLE {ident} SET {name} = '{value}'")
        # Nothing owned by the role (an owner may do anything to its objects).
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
            " WHERE rolname = $1)",
            role,
        )
        if owned:
            raise CoachDbError(f"Role {role!r} owns tables here: choose another name with --role.")
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ident}")
        await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ident}")
        await conn.execute(f"GRANT CONNECT ON DATABASE {_ident(database)} TO {ident}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")
        columns = await conn.fetch(
            "SELECT c.relname AS table, a.attname AS column FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')"
            " ORDER BY c.relname, a.attnum"
        )
        readable: dict[str, list[str]] = {}
        hidden = []
        for row in columns:
            if is_secret(row["table"], row["column"]):
                hidden.append(f"{row['table']}.{row['column']}")
            else:
                readable.setdefault(row["table"], []).append(row["column"])
        for table, names in readable.items():
            cols = ", ".join(_ident(n) for n in names)
            await conn.execute(f"GRANT SELECT ({cols}) ON {_ident(table)} TO {ident}")
    return Provisioned(role, len(readable), hidden)


async def drop(conn: asyncpg.Connection, role: str) -> bool:
    """Drop `role` (its grants in this database first); False when there is none."""
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        return False
    ident = _ident(role)
    # Grants in other databases keep a role alive: DROP ROLE then says which database.
    await conn.execute(f"DROP OWNED BY {ident}")
    await conn.execute(f"DROP ROLE {ident}")
    return True


async def _run(url: str, role: str, remove: bool) -> None:
    from coach_db.db import connect_raw

    conn = await connect_raw(url, "coach-db console-role")
    try:
        if remove:
            gone = await drop(conn, role)
            out.print(f"Dropped role {role}." if gone else f"There is no role {role}.")
            return
        password = secrets.token_urlsafe(24)
        try:
            done = await provision(conn, role, password)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise CoachDbError(
                f"Can't provision the console role as this user ({exc}): run it with a "
                "DATABASE_URL of a superuser or of a role with CREATEROLE that owns the tables."
            ) from None
    finally:
        await conn.close()
    target = console_url(url, role, password)
    remember_secrets(target)
    out.print(
        f"Role {done.role}: read-only login, SELECT on {done.tables} tables of "
        f"{mask_url(url)} without {', '.join(done.hidden) or 'no column'}."
    )
    out.print("Give the studio this URL (shown once; run the command again for a new password):")
    print(f"COACH_DB_CONSOLE_URL={target}", flush=True)


def console_role(
    role: Annotated[
        str | None, typer.Option(help="Role name (default: <database>_console).")
    ] = None,
    remove: Annotated[bool, typer.Option("--drop", help="Drop the role instead.")] = False,
) -> None:
    """Create or update the read-only role of the studio's SQL console (run after migrations).

    It can only SELECT, and not the secret columns (password hashes, the erasure salt). Prints
    the COACH_DB_CONSOLE_URL the studio needs. Needs a superuser DATABASE_URL (or CREATEROLE).
    """
    import asyncio

    url = database_url()
    asyncio.run(_run(url, role or default_role(url), remove))


def register(app: typer.Typer, friendly: Callable[[Any], Any]) -> None:
    app.command("console-role")(friendly(console_role))
