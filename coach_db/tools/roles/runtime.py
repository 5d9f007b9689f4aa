"""The runtime role's grants (issue 18): what services and the studio may do, and no more.

Two roles: the owner runs `coach-db deploy` and owns every table; the runtime role, which the
services and the studio connect as, reads and writes the application's tables, may only read
and append to the audit trail, only read the erasure receipts, and erases a person only through
erase_person() (migration 8). This module writes the GRANT statements from the database's own
list of tables, so tables added by later migrations are covered by running it again.
It does not create the role: making a login and its password is the DBA's (or the secret
manager's) job, and a password never passes through this command.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from coach_db.db import connect_raw
from coach_db.errors import CoachDbError

# The table the runtime role may read and append to, never change; and the one it may only
# read (receipts are written by erase_person(), as the owner: the runtime role cannot forge one).
APPEND_ONLY = ("audit_event",)
READ_ONLY = ("aerich", "erasure_receipt")
# Tables it may not touch at all: the old receipts' salt and the chain head (the seal trigger
# updates it as the owner).
NO_ACCESS = ("erasure_salt", "audit_chain_head")
FUNCTIONS = ("erase_person(integer, text, text, integer, text)",)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Plan:
    role: str
    statements: list[str]

    @property
    def sql(self) -> str:
        return "".join(f"{statement};\n" for statement in self.statements)


async def plan(conn: asyncpg.Connection, role: str) -> Plan:
    """The statements that give `role` exactly the runtime role's rights in this database."""
    if not role or len(role.encode()) > 63 or "\x00" in role:
        raise CoachDbError("The role name must be 1 to 63 bytes long.")
    schema = await conn.fetchval("SELECT current_schema()")
    database = await conn.fetchval("SELECT current_database()")
    if schema is None:
        raise CoachDbError("The database has no schema on the search path: run `coach-db deploy`.")
    tables = [
        r["tablename"]
        for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema
        )
    ]
    if "audit_chain_head" not in tables:
        raise CoachDbError("The database lacks migration 8: run `coach-db deploy` first.")
    r, s = quote_ident(role), quote_ident(schema)

    def listed(names: list[str]) -> str:
        return ", ".join(f"{s}.{quote_ident(n)}" for n in names)

    special = set(APPEND_ONLY) | set(NO_ACCESS) | set(READ_ONLY)
    ordinary = [t for t in tables if t not in special]
    statements = [
        # From a clean slate, so that running it again also takes back what is no longer due.
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
        f"REVOKE CREATE ON SCHEMA {s} FROM {r}",
        f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
    ]
    if ordinary:
        statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {listed(ordinary)} TO {r}")
    present = [t for t in APPEND_ONLY if t in tables]
    statements.append(f"GRANT SELECT, INSERT ON {listed(present)} TO {r}")
    if readable := [t for t in READ_ONLY if t in tables]:
        statements.append(f"GRANT SELECT ON {listed(readable)} TO {r}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    statements += [f"GRANT EXECUTE ON FUNCTION {s}.{f} TO {r}" for f in FUNCTIONS]
    return Plan(role, statements)


async def problems(conn: asyncpg.Connection, role: str) -> list[str]:
    """Why `role` could still get around the trail's protection, if it could."""
    row = await conn.fetchrow(
        """SELECT r.rolsuper, r.rolbypassrls,
                  pg_has_role(r.oid, c.relowner, 'MEMBER') AS owner,
                  has_schema_privilege(r.oid, current_schema(), 'CREATE') AS create_schema,
                  has_database_privilege(r.oid, current_database(), 'CREATE') AS create_db
             FROM pg_roles r, pg_class c
            WHERE r.rolname = $1 AND c.oid = 'audit_event'::regclass""",
        role,
    )
    if row is None:
        return [
            f"there is no role {role!r}: create it first (CREATE ROLE {quote_ident(role)} LOGIN "
            "PASSWORD '...'), then run this again"
        ]
    found = []
    if row["rolsuper"]:
        found.append("it is a superuser")
    if row["owner"]:
        found.append("it owns the tables or is a member of their owner (it could SET ROLE)")
    if row["create_schema"]:
        found.append(
            "it may create objects in the schema (granted to PUBLIC before PostgreSQL 15: "
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC)"
        )
    if row["create_db"]:
        found.append("it may create schemas in the database (REVOKE CREATE ON DATABASE ...)")
    return found


async def apply(url: str, role: str) -> Plan:
    """Run the plan as the owner, in one transaction, and refuse a role that is not safe."""
    conn = await connect_raw(url, application_name="coach-db runtime-role")
    try:
        if found := await problems(conn, role):
            raise CoachDbError(f"{role!r} cannot be the runtime role: " + "; ".join(found) + ".")
        chosen = await plan(conn, role)
        try:
            async with conn.transaction():
                for statement in chosen.statements:
                    await conn.execute(statement)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise CoachDbError(
                f"Not applied (run it as the owner, the role that runs `coach-db deploy`): {exc}"
            ) from None
        return chosen
    finally:
        await conn.close()


async def show(url: str, role: str) -> tuple[Plan, list[str]]:
    """The plan, and the problems of the role if it exists already (none if it does not)."""
    conn = await connect_raw(url, application_name="coach-db runtime-role")
    try:
        chosen = await plan(conn, role)
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        return chosen, (await problems(conn, role)) if exists else []
    finally:
        await conn.close()
