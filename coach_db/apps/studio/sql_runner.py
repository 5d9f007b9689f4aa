"""How the SQL console runs one statement: checked, as its own read-only role, bounded.

Layers, each enough for most attacks and none trusted alone:
1. the text: one statement (outside comments, strings and dollar quotes), starting with SELECT,
   WITH, VALUES, TABLE or EXPLAIN, naming none of the functions that sleep, lock, signal,
   read files, open connections or change settings (NAMED_FUNCTIONS), no SELECT … INTO;
2. the protocol: asyncpg's extended protocol prepares the statement, and a prepared statement
   cannot hold two;
3. the role (coach-db console-role): its own login, checked on every connection (no superuser,
   no memberships, owns nothing, can write nothing, reads no secret column), SELECT only;
4. the transaction: READ ONLY with a snapshot taken first (SET TRANSACTION READ WRITE is then
   refused), statement and lock timeouts, a client-side deadline that drops the connection,
   and a fresh connection per statement (whatever a statement set dies with it);
5. the result: read through a wrapper that casts every cell to text cut at CELL_CHARS and
   stops at max_rows + 1, and the bytes received are capped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from dataclasses import dataclass, field

import asyncpg

from coach_db.db import asyncpg_dsn
from coach_db.tools.roles.console import is_secret

MAX_SQL_CHARS = 20_000
CELL_CHARS = 2_000
FIRST_WORDS = frozenset({"select", "with", "values", "table", "explain"})
# Functions the console never calls (prefixes of their names, as the text names them).
NAMED_FUNCTIONS = (
    "pg_sleep",
    "pg_advisory",
    "pg_try_advisory",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_file_",
    "pg_logical_emit",
    "pg_notify",
    "pg_switch_wal",
    "pg_create_",
    "pg_drop_",
    "pg_promote",
    "lo_",
    "loread",
    "lowrite",
    "dblink",
    "set_config",
    "query_to_xml",
    "cursor_to_xml",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
)


class Refused(Exception):
    """The statement is not run; the message says why."""


class ConsoleOff(Exception):
    """The console cannot run anything here (no role, unsafe role, unreachable)."""


@dataclass
class Result:
    columns: list[str] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    plan: str | None = None  # EXPLAIN's output, as text
    cut: str | None = None  # why fewer rows are shown than the statement returns
    milliseconds: float = 0.0

    @property
    def row_count(self) -> int:
        return len(self.rows)


def _words(sql: str) -> tuple[list[str], int | None]:
    """The statement's words (bare and quoted identifiers and keywords, lower case) and where
    the `;` that ends it is (only space or comments may follow it). Strings and comments are
    skipped as PostgreSQL's lexer skips them; what it might read otherwise is refused."""
    words: list[str] = []
    i, n = 0, len(sql)
    ended: int | None = None
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2  # PostgreSQL's block comments nest
            while depth and i < n:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise Refused("A /* comment is not closed.")
        elif ended is not None:
            raise Refused("One statement at a time: there is more after the `;`.")
        elif c == ";":
            ended, i = i, i + 1
        elif c in "uU" and sql.startswith("&", i + 1):
            raise Refused("U& escapes are not accepted in the console.")
        elif c == "'" or (c in "eEbBxXnN" and sql.startswith("'", i + 1)):
            backslash = c in "eE"
            i = i + 1 if c == "'" else i + 2
            while True:
                if i >= n:
                    raise Refused("A string is not closed.")
                if backslash and sql[i] == "\\":
                    i += 2
                elif sql[i] == "'":
                    if sql.startswith("'", i + 1):
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif c == '"':
            j = i + 1
            name = []
            while True:
                k = sql.find('"', j)
                if k < 0:
                    raise Refused("A quoted name is not closed.")
                name.append(sql[j:k])
                if sql.startswith('"', k + 1):
                    name.append('"')
                    j = k + 2
                else:
                    i = k + 1
                    break
            words.append("".join(name).lower())
        elif c == "$" and (m := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])):
            tag = m.group(0)
            end = sql.find(tag, i + len(tag))
            if end < 0:
                raise Refused("A $-quoted string is not closed.")
            i = end + len(tag)
        elif c.isalpha() or c == "_":
            m = re.match(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*", sql[i:])
            assert m is not None
            words.append(m.group(0).lower())
            i += len(m.group(0))
        else:
            i += 1
    return words, ended


def check(sql: str) -> tuple[str, bool]:
    """The statement to run (without its final `;`) and whether it is an EXPLAIN; Refused
    with the reason otherwise."""
    if len(sql) > MAX_SQL_CHARS:
        raise Refused(f"The statement is longer than {MAX_SQL_CHARS:,} characters.")
    if "\x00" in sql:
        raise Refused("The statement contains a NUL character.")
    words, end = _words(sql)
    if not words:
        raise Refused("There is no statement.")
    if words[0] not in FIRST_WORDS:
        raise Refused(
            f"Only SELECT, WITH, VALUES, TABLE and EXPLAIN run here, not {words[0].upper()}."
        )
    for word in words:
        if word == "into":
            raise Refused("SELECT … INTO creates a table: not in the console.")
        if word.startswith(NAMED_FUNCTIONS):
            raise Refused(f"{word}() is not available in the console.")
    # A final `;` (with comments or space after it) is dropped; a second statement was refused.
    statement = sql if end is None else sql[:end]
    return statement.strip(), words[0] == "explain"


# --- the role ------------------------------------------------------------------------------------

_ROLE_CHECK = """
SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls
         AS privileged,
       current_user <> session_user AS switched,
       EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member,
       EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = current_database()
               AND d.datdba = r.oid) AS owns_database,
       EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
                 AND (c.relowner = r.oid
                      OR (c.relkind IN ('r', 'p', 'v', 'm', 'f')
                          AND (has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                               OR has_any_column_privilege(c.oid, 'INSERT, UPDATE')))
                      OR (c.relkind = 'S' AND has_sequence_privilege(c.oid, 'USAGE, UPDATE')))
       ) AS writes
FROM pg_roles r WHERE r.rolname = current_user
"""
_SECRET_CHECK = """
SELECT c.relname AS table, a.attname AS column,
       has_column_privilege(c.oid, a.attnum, 'SELECT') AS readable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""


async def check_role(conn: asyncpg.Connection) -> None:
    """ConsoleOff unless the connection's role is the console's kind of role."""
    row = await conn.fetchrow(_ROLE_CHECK)
    if row is None:
        raise ConsoleOff("the console's role is not in pg_roles")
    problems = [
        what
        for what, bad in (
            ("is a superuser or may create roles or databases", row["privileged"]),
            ("has switched role", row["switched"]),
            ("is a member of other roles", row["member"]),
            ("owns the database", row["owns_database"]),
            ("may write to tables or own them", row["writes"]),
        )
        if bad
    ]
    for column in await conn.fetch(_SECRET_CHECK):
        if column["readable"] and is_secret(column["table"], column["column"]):
            problems.append(f"may read the secret column {column['table']}.{column['column']}")
            break
    if problems:
        raise ConsoleOff(
            "the role of COACH_DB_CONSOLE_URL "
            + "; ".join(problems)
            + ". Point it at the role `coach-db console-role` makes."
        )


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    timeout_ms: int = 5_000
    max_rows: int = 1_000
    max_bytes: int = 2_000_000


async def connect(url: str) -> asyncpg.Connection:
    """A new connection as the console's role; ConsoleOff (without the URL) if it fails."""
    try:
        return await asyncpg.connect(
            asyncpg_dsn(url),
            timeout=5,
            statement_cache_size=0,
            server_settings={"application_name": "coach-db studio console"},
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise ConsoleOff(f"can't connect as the console's role ({type(exc).__name__})") from None


async def run(url: str, sql: str, limits: Limits = Limits()) -> Result:
    """Run one checked statement as the console role (Refused, ConsoleOff, or the
    PostgreSQL error, e.g. QueryCanceledError for the timeout)."""
    statement, explain = check(sql)
    conn = await connect(url)
    started = time.perf_counter()
    try:
        # The server's timeout first; this deadline if the server does not answer.
        deadline = limits.timeout_ms / 1000 + 3
        result = await asyncio.wait_for(_run_in(conn, statement, explain, limits), deadline)
    except TimeoutError:
        conn.terminate()
        raise Refused(f"No answer within {limits.timeout_ms / 1000:g} s: stopped.") from None
    finally:
        if not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                conn.terminate()
    result.milliseconds = (time.perf_counter() - started) * 1000
    return result


async def _run_in(
    conn: asyncpg.Connection, statement: str, explain: bool, limits: Limits
) -> Result:
    await check_role(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(
            f"SET LOCAL statement_timeout = {int(limits.timeout_ms)};"
            " SET LOCAL lock_timeout = 1000;"
            " SET LOCAL idle_in_transaction_session_timeout = 15000;"
            " SET LOCAL client_connection_check_interval = 1000"
        )
        # The snapshot is taken now: a later SET TRANSACTION READ WRITE is refused.
        await conn.fetchval("SELECT 1")
        prepared = await conn.prepare(statement)  # one statement only (extended protocol)
        names = [attribute.name for attribute in prepared.get_attributes()]
        if explain:
            lines = [str(row[0]) for row in await prepared.fetch()]
            plan = "\n".join(lines)[: limits.max_bytes]
            return Result(columns=names, rows=[[line] for line in lines], plan=plan)
        return await _rows(conn, statement, names, limits)


async def _rows(
    conn: asyncpg.Connection, statement: str, names: list[str], limits: Limits
) -> Result:
    """The rows as text, through a wrapper that cuts each cell and stops after max_rows + 1."""
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    cells = ", ".join(f"left(c{i}::text, {CELL_CHARS + 1})" for i in range(len(names)))
    wrapped = (
        f"SELECT {cells} FROM ({statement}\n) AS console_result"
        + (f"({aliases})" if names else "")
        + f" LIMIT {limits.max_rows + 1}"
    )
    result = Result(columns=names)
    size = 0
    async for record in conn.cursor(wrapped, prefetch=100):
        if len(result.rows) == limits.max_rows:
            result.cut = f"only the first {limits.max_rows:,} rows are shown"
            break
        row: list[str | None] = []
        for value in record.values():
            if value is not None and len(value) > CELL_CHARS:
                value = value[:CELL_CHARS] + "…"
            size += len(value or "") + 1
            row.append(value)
        result.rows.append(row)
        if size > limits.max_bytes:
            result.cut = f"stopped at {limits.max_bytes // 1_000_000} MB of results"
            break
    return result


def safe_cell(value: str | None) -> str:
    """A cell for a spreadsheet: text that a spreadsheet would run as a formula gets a `'`."""
    if value is None:
        return ""
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(name) for name in result.columns])
    for row in result.rows:
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue()
