"""The `coach-db` command (also `python -m coach_db`): migrate, deploy, status, seed, studio, ..."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from coach_db import audit_cli as _audit_cli
from coach_db import console_role as _console_role
from coach_db import privacy_cli as _privacy_cli
from coach_db.adoption import cli as _adoption_cli
from coach_db.config import database_url, get_settings, mask_url, scrub
from coach_db.errors import APPLY_MIGRATIONS, CoachDbError, PendingMigrations
from coach_db.schema import check_drift, deploy, make_migration, migration_status

app = typer.Typer(
    help="coach-db: the Conversation Coach database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)
_debug = False

P = ParamSpec("P")
R = TypeVar("R")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """coach-db: the Conversation Coach database."""
    global _debug
    _debug = debug


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Errors as one clear line (exit 1); --debug shows the traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if _debug or not isinstance(exc, (CoachDbError, OSError, RuntimeError)):
                # Any URL in the traceback (a parser's message, a repr) loses its password.
                trace = "".join(traceback.format_exception(exc))
                print(scrub(trace), file=sys.stderr, end="")
            else:
                # Our own errors mask URLs already; an OSError may quote anything.
                message = str(exc) if isinstance(exc, CoachDbError) else scrub(str(exc))
                console.print(f"[red]Error:[/] {escape(message)}")
            raise typer.Exit(1) from None

    return wrapper


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def is_local(url: str) -> bool:
    """True for localhost, loopback addresses and Unix sockets."""
    parts = urlsplit(url)
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host", "localhost")
    return host.startswith("/") or host in {"localhost", "127.0.0.1", "::1"}


# --- the studio (the main job) ---------------------------------------------------------------


@app.command()
@friendly
def studio(
    host: Annotated[str | None, typer.Option(help="Default: STUDIO_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: STUDIO_PORT or 5555.")] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
) -> None:
    """Open the studio on http://127.0.0.1:5555, with embedded servers when no URLs are set.

    Without DATABASE_URL / REDIS_URL it starts PostgreSQL and Redis from their wheels, keeping
    the data in .coach-db/ (COACH_DB_HOME). Then it applies pending migrations, seeds an empty
    database, and serves until Ctrl-C, which stops everything it started.
    """
    _require_studio()
    from admin import assets
    from admin.app import serve
    from admin.config import get_studio_settings
    from coach_db.embedded import EmbeddedServers, home, running_state

    settings = get_studio_settings()
    settings = settings.model_copy(
        update={
            "studio_host": host or settings.studio_host,
            "studio_port": port or settings.studio_port,
        }
    )
    _check_port_free(settings.studio_host, settings.studio_port)
    if assets.missing():
        console.print("Installing the studio's pinned CSS and JS (npm ci, needed once) ...")
        try:
            assets.ensure()
        except assets.AssetsMissing as exc:
            # Offline (no npm registry): the studio works unstyled and says so on every page.
            console.print(f"[yellow]Warning:[/] {escape(str(exc))} The studio runs without them.")
    need_postgres = not settings.database_url
    need_redis = "redis_url" not in settings.model_fields_set
    if (need_postgres or need_redis) and (other := running_state()):
        raise CoachDbError(
            f"Another `coach-db studio` (pid {other.pid}) is using the embedded servers in "
            f"{home()}. Stop it first (Ctrl-C in its terminal)."
        )
    if need_postgres or need_redis:
        wanted = (("PostgreSQL", need_postgres), ("Redis", need_redis))
        what = " and ".join(name for name, needed in wanted if needed)
        console.print(f"Starting embedded {what} in {home()} ...")
    servers = EmbeddedServers(postgres=need_postgres, redis=need_redis)
    try:
        servers.start()
        url = database_url(servers.database_url or settings.database_url)
        if need_postgres:
            _development_erasure_key(home())
        settings = settings.model_copy(
            update={"database_url": url, "redis_url": servers.redis_url or settings.redis_url}
        )
        console.print(f"Database: {mask_url(url)}")
        console.print(f"Redis:    {mask_url(settings.redis_url)}")
        if migrate:
            for name in run(deploy(url)):
                console.print(f"[green]Applied[/] {name}")
            if run(_count_users(url)) == 0:
                console.print("The database is empty: seeding it.")
                _run_seed(demo=20, random_seed=None)
        elif pending := run(migration_status(url)).pending:
            # The models would ask for columns the database lacks: every such page a 500.
            raise PendingMigrations(pending)
        where = f"http://{_display_host(settings.studio_host)}:{settings.studio_port}/admin/"
        stops = " and the embedded servers" if need_postgres or need_redis else ""
        console.print(
            f"\n[bold green]Studio:[/] {where}\n"
            "Sign in as a staff user: admin@example.com, with the password the first seed\n"
            "showed or SEED_ADMIN_PASSWORD (without a terminal, the seed wrote it to\n"
            f"  {home() / 'admin-password.txt'}),\n"
            "or make one with `coach-db createstaff EMAIL`.\n"
            f"Ctrl-C stops the studio{stops}."
        )
        run(serve(settings, announce=False))
    except KeyboardInterrupt:
        pass
    finally:
        # Ctrl-C reaches every process of the terminal, often twice (uv forwards it): let
        # nothing interrupt the shutdown of the servers we started.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        servers.stop()
    console.print("Studio stopped.")


def _development_erasure_key(folder: Path) -> None:
    """The embedded (development) database's erasure key, made once beside its data, so the
    studio's erasure works out of the box; a deployment sets its own (COACH_DB_ERASURE_KEY_FILE)."""
    settings = get_settings()
    if settings.coach_db_erasure_key_file or settings.coach_db_erasure_key:
        return
    path = folder / "erasure_key.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    os.environ["COACH_DB_ERASURE_KEY_FILE"] = str(path)


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket() as sock:
        # As uvicorn does: connections of a studio that just stopped (TIME_WAIT) are no obstacle.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise CoachDbError(
                f"Port {port} on {host} is already in use (another studio?). Stop that program, "
                "or choose another port with --port or STUDIO_PORT."
            ) from None


def _display_host(host: str) -> str:
    """The address the studio binds, as a URL host (all interfaces: the loopback one)."""
    if host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


# Modules of the `studio` extra; without them, `coach-db studio` says what to install.
_STUDIO_MODULES = ("fastapi_admin", "fastapi", "uvicorn", "redis", "multipart", "babel")


def _require_studio() -> None:
    import importlib.util

    absent = [name for name in _STUDIO_MODULES if importlib.util.find_spec(name) is None]
    if absent or importlib.util.find_spec("admin") is None:
        what = ", ".join(absent) or "admin"
        raise CoachDbError(studio_not_installed(what))


def studio_not_installed(what: str) -> str:
    """What `coach-db studio` and `python -m admin` say when the studio extra is missing."""
    return (
        f"The studio is not installed (no {what}): it comes with the `studio` extra. "
        "Install coach-db[studio], e.g. `pip install 'coach-db[studio]'` or "
        "`uv add 'coach-db[studio]'`."
    )


async def _count_users(url: str) -> int:
    from coach_db.schema import connect_raw

    conn = await connect_raw(url)
    try:
        return int(await conn.fetchval('SELECT count(*) FROM "user"'))
    finally:
        await conn.close()


# --- migrations -------------------------------------------------------------------------------


@app.command()
@friendly
def check(
    prisma: Annotated[
        Path | None,
        typer.Option(
            "--prisma",
            help="Also check this schema.prisma (default: [tool.coach-db] prisma_schema).",
        ),
    ] = None,
) -> None:
    """Fail when the code and the migrations disagree (offline: no database needed).

    It checks that the generated coach_db/types.py and coach_db/models.pyi are what
    `coach-db generate` writes for the current models (and, when asked, that a kept
    schema.prisma is what `coach-db generate --prisma` writes), and that the models match the
    last migration (no change without a migration). Each gets one line; exit 1 if any fails.
    """
    from coach_db.codegen import drift as generated_drift
    from coach_db.prisma_schema import prisma_drift

    stale = generated_drift() + prisma_drift(prisma)
    for path in stale:
        out.print(
            f"[red]✗ Generated files:[/] {path if path.suffix == '.prisma' else path.name} is not "
            "what `coach-db generate"
            f"{' --prisma ' + str(path.parent) if path.suffix == '.prisma' else ''}` writes for "
            "the current models: run it and commit the file."
        )
    if not stale:
        out.print("[green]✓ Generated files:[/] types.py and models.pyi match the models.")
    drift = check_drift()
    if drift.clean:
        out.print("[green]✓ Migrations:[/] the models match the last migration.")
    else:
        out.print(
            "[red]✗ Migrations:[/] the models changed without a migration. With the database up "
            f"to date ({APPLY_MIGRATIONS}), run `coach-db migrate --name <what changed>` and "
            "commit the file. The difference, as SQL:"
        )
        out.print(Syntax(drift.upgrade_sql or drift.sql, "sql"))
    problems = [f"{len(stale)} generated file(s) out of date"] if stale else []
    if not drift.clean:
        problems.append("a model change without a migration")
    if problems:
        out.print(f"[red]Check failed:[/] {' and '.join(problems)}.")
        raise typer.Exit(1)
    out.print("[green]All checks passed.[/]")


@app.command()
@friendly
def status() -> None:
    """Applied and pending migrations and drift; exit 1 unless all is up to date."""
    url = database_url()
    state = run(migration_status(url))
    drift = check_drift()
    out.print(f"Database {mask_url(url)}")
    table = Table()
    table.add_column("migration")
    table.add_column("state")
    for name in state.applied:
        table.add_row(name, "[green]applied[/]")
    for name in state.pending:
        table.add_row(name, "[yellow]pending[/]")
    out.print(table)
    if not drift.clean:
        out.print("[red]Drift:[/] the models changed without a migration (`coach-db check`).")
    if state.pending:
        out.print(f"[yellow]{len(state.pending)} pending:[/] {APPLY_MIGRATIONS}.")
    if state.pending or not drift.clean:
        raise typer.Exit(1)
    out.print("[green]Up to date.[/]")


@app.command("deploy")
@friendly
def deploy_command(
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for another deploy's migration lock (DEPLOY_LOCK_TIMEOUT, 300).",
            min=0.001,
        ),
    ] = None,
) -> None:
    """Apply pending migrations (non-interactive, safe when several containers start at once)."""
    url = database_url()
    applied = run(deploy(url, lock_timeout=lock_timeout))
    for name in applied:
        console.print(f"[green]Applied[/] {name}")
    console.print(f"Database {mask_url(url)} is up to date ({len(applied)} applied now).")


@app.command("migrate")
@friendly
def migrate_command(
    name: Annotated[str, typer.Option("--name", "-n", help="What changed, e.g. add_tags.")] = (
        "update"
    ),
) -> None:
    """Write a migration for changed models (refused while the database is behind)."""
    created = run(make_migration(database_url(), name))
    if created is None:
        console.print("No changes detected: the models match the last migration.")
        return
    console.print(f"[green]Created[/] migrations/models/{created}: review it, then deploy it.")


@app.command()
@friendly
def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option(help="Allow a database that is not local.")] = False,
    seed_data: Annotated[bool, typer.Option("--seed/--no-seed", help="Seed afterwards.")] = True,
) -> None:
    """Drop everything in the database, apply all migrations, and seed."""
    url = database_url()
    if not is_local(url) and not force:
        raise CoachDbError(
            f"Refusing to reset {mask_url(url)}: it is not a local database. "
            "Pass --force if you really mean to erase it."
        )
    if not yes:
        if not sys.stdin.isatty():
            raise CoachDbError("`coach-db reset` erases all data: confirm with --yes.")
        typer.confirm(f"Erase ALL data in {mask_url(url)}?", abort=True)
    run(_drop_all(url))
    console.print(f"[yellow]Dropped[/] everything in {mask_url(url)}.")
    for name in run(deploy(url)):
        console.print(f"[green]Applied[/] {name}")
    if seed_data:
        _run_seed(demo=0, random_seed=None)


async def _drop_all(url: str) -> None:
    from coach_db.schema import connect_raw, drop_project_objects

    conn = await connect_raw(url)
    try:
        await drop_project_objects(conn)
    finally:
        await conn.close()


# --- data -------------------------------------------------------------------------------------


def _run_seed(demo: int, random_seed: int | None) -> None:
    """Run the seed package as `coach-db seed` would, raising on failure."""
    argv = ["--demo", str(demo)] if demo else []
    if random_seed is not None:
        argv += ["--random-seed", str(random_seed)]
    if (code := _seed_main(argv)) != 0:
        raise typer.Exit(code)


def _seed_main(argv: list[str]) -> int:
    try:
        # Imported here: the library (coach_db) never imports the seed; the wheel ships both.
        from seed.cli import main as seed_main
    except ModuleNotFoundError as exc:
        if exc.name != "seed":
            raise
        raise CoachDbError(
            "No seed package: this coach-db was installed without it. Reinstall coach-db from "
            "its wheel, or run `uv run coach-db seed` from a checkout."
        ) from None
    return seed_main(argv, prog="coach-db seed")


# The options are parsed by the seed's own argparse (so `--demo` alone means 20, as in
# `python -m seed`); typer only forwards them, and `--help` too.
@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
@friendly
def seed(ctx: typer.Context) -> None:
    """Load the development data; --demo N adds demo conversations (--help for the options)."""
    raise typer.Exit(_seed_main(ctx.args))


# The roles of coach_db.models.StaffRole (not imported here: the CLI starts without Tortoise).
STAFF_ROLES = ("viewer", "editor", "admin")


@app.command()
@friendly
def createstaff(
    email: Annotated[str, typer.Argument(help="E-mail of the staff user.")],
    username: Annotated[str | None, typer.Option(help="Display name.")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="viewer (reads only), editor (also changes scenarios, sessions and messages) "
            "or admin (also users and staff). Default: admin for a new staff user, unchanged "
            "for one who is already staff.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help="Read the password from the first line of this file (a Docker secret, "
            "e.g. /run/secrets/studio_admin_password).",
        ),
    ] = None,
) -> None:
    """Create a staff user for the studio (or make an existing user staff); asks for a password.

    Running it again for the same e-mail sets the new password (and the role, with --role).
    """
    if password_stdin and password_file:
        raise CoachDbError("Pass either --password-stdin or --password-file, not both.")
    if role is not None and role.strip().lower() not in STAFF_ROLES:
        raise CoachDbError(f"--role must be one of {', '.join(STAFF_ROLES)}, not {role!r}.")
    if password_file is not None:
        password = _read_password_file(password_file)
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise CoachDbError("The password must have at least 8 characters.")
    chosen = role.strip().lower() if role is not None else None
    created, given = run(_createstaff(email, username, password, chosen))
    verb = "Created" if created else "Updated"
    console.print(f"[green]{verb}[/] staff user {email.strip().lower()} ({given}).")


def _read_password_file(path: Path) -> str:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise CoachDbError(f"Can't read the password file {path}: {reason}.") from None
    # The first line: files written by echo or an editor end with a newline.
    return text.splitlines()[0] if text.strip() else ""


async def _createstaff(
    email: str, username: str | None, password: str, role: str | None
) -> tuple[bool, str]:
    import coach_db
    from coach_db.models import StaffRole
    from coach_db.passwords import hash_password

    async with coach_db.connect():
        user, created = await coach_db.User.get_or_create(
            email=email,
            defaults={"username": username or email.split("@")[0]},
        )
        # The command is how the first administrator is made (it needs the database itself);
        # run again for someone already staff, it keeps their role unless --role says.
        if role is not None:
            user.role = StaffRole(role)
        elif not user.is_staff:
            user.role = StaffRole.ADMIN
        user.is_staff = True
        user.password_hash = hash_password(password)
        if username:
            user.username = username
        await user.save()
        return created, str(user.role)


@app.command()
@friendly
def generate(
    json_schema: Annotated[
        Path | None,
        typer.Option("--json-schema", "--out", help="Write the JSON Schemas here instead."),
    ] = None,
    ts: Annotated[
        Path | None, typer.Option("--ts", help="Write TypeScript types here instead.")
    ] = None,
    prisma: Annotated[
        Path | None,
        typer.Option("--prisma", help="Write DIR/schema.prisma for Prisma Client instead."),
    ] = None,
) -> None:
    """Write coach_db/types.py and coach_db/models.pyi from the models (or JSON Schema / TS)."""
    from coach_db import codegen

    if prisma is not None:
        from coach_db.prisma_schema import write

        console.print(f"Wrote {write(prisma)}")
    if json_schema is None and ts is None and prisma is None:
        for path in codegen.write_generated():
            console.print(f"Wrote {path}")
        console.print("The generated types match the models.")
        return
    from coach_db import types

    if json_schema is not None:
        json_schema.mkdir(parents=True, exist_ok=True)
        for name in types.__all__:
            model = getattr(types, name)
            if hasattr(model, "model_json_schema"):
                path = json_schema / f"{name}.schema.json"
                path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n")
                console.print(f"Wrote {path}")
    if ts is not None:
        ts.mkdir(parents=True, exist_ok=True)
        path = ts / "coach-db.ts"
        path.write_text(codegen.render_typescript())
        console.print(f"Wrote {path}")


# --- retention --------------------------------------------------------------------------------


@app.command()
@friendly
def retention(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            min=1,
            help="Delete conversations whose last activity is more than DAYS days ago.",
            metavar="DAYS",
        ),
    ],
    archive: Annotated[
        Path | None,
        typer.Option(help="Append each deleted session and message to FILE as JSON lines first."),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(min=1, max=10_000, help="Sessions per transaction."),
    ] = 1000,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete; without it, only count (a dry run).")
    ] = False,
) -> None:
    """Delete (or archive, then delete) conversations idle for more than DAYS days, in batches.

    Without --yes it only counts what would go. Each batch of sessions is its own short
    transaction; stopping it anywhere is safe, and running it again finishes the job.
    """
    from coach_db.retention import cutoff_for

    if archive is not None:
        if archive.is_dir():
            raise CoachDbError(f"--archive {archive} is a directory: name a file to append to.")
        if not archive.parent.is_dir():
            raise CoachDbError(f"--archive {archive}: the folder {archive.parent} does not exist.")
    cutoff = cutoff_for(older_than)
    run(_retention(database_url(), cutoff, archive, batch, yes))


async def _retention(url: str, cutoff: Any, archive: Path | None, batch: int, yes: bool) -> None:
    import time

    from coach_db.db import connect
    from coach_db.retention import count_idle, delete_idle

    async with connect(url):
        todo = await count_idle(cutoff)
        when = f"last active before {cutoff:%Y-%m-%d %H:%M} UTC"
        if not yes:
            out.print(
                f"{todo.sessions:,} conversations ({todo.messages:,} messages) {when} "
                "would be deleted. Run again with --yes to delete them."
            )
            return
        if not todo.sessions:
            out.print(f"No conversation was {when}: nothing to delete.")
            return
        out.print(f"Deleting {todo.sessions:,} conversations ({todo.messages:,} messages) {when}.")
        started = time.monotonic()
        with archive.open("a", encoding="utf-8") if archive else _no_file() as file:
            done = 0
            total_messages = 0
            async for deleted in delete_idle(cutoff, batch=batch, archive=file):
                done += deleted.sessions
                total_messages += deleted.messages
                elapsed = time.monotonic() - started
                left = elapsed / done * max(todo.sessions - done, 0) if done else 0
                console.print(
                    f"{done:,} / {todo.sessions:,} conversations deleted "
                    f"({total_messages:,} messages), about {left:.0f} s left",
                    markup=False,
                )
        out.print(
            f"Deleted {done:,} conversations ({total_messages:,} messages) in "
            f"{time.monotonic() - started:.1f} s"
            + (f"; archived to {archive}." if archive else ".")
        )


@contextmanager
def _no_file() -> Iterator[None]:
    yield None


# --- a person's data and research exports (coach_db/privacy_cli.py) ---------------------------
_privacy_cli.register(app, friendly)
# --- audit chain and the runtime role (coach_db/audit_cli.py) -------------------------------
_audit_cli.register(app, friendly)

# --- the studio SQL console's read-only role (coach_db/console_role.py) -----------------------
_console_role.register(app, friendly)


def main() -> None:
    app()


_adoption_cli.register(app, friendly)
