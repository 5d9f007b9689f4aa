"""The `coach-db` command (also `python -m coach_db`): migrate, deploy, status, seed, studio, ..."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from coach_db.config import database_url, mask_url
from coach_db.errors import CoachDbError
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
        except (typer.Exit, typer.Abort):
            raise
        except (CoachDbError, OSError, RuntimeError) as exc:
            if _debug:
                raise
            console.print(f"[red]Error:[/] {exc}")
            raise typer.Exit(1) from None

    return wrapper


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def is_local(url: str) -> bool:
    """True for localhost, loopback addresses and Unix sockets."""
    parts = urlsplit(url)
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host", "localhost")
    return host.startswith("/") or host in {"localhost", "127.0.0.1", "::1"}


# --- migrations -------------------------------------------------------------------------------


@app.command()
@friendly
def check() -> None:
    """Fail when the models changed without a migration (offline: no database needed)."""
    drift = check_drift()
    if drift.clean:
        console.print("[green]No drift:[/] the models match the last migration.")
        return
    console.print(
        "[red]Drift:[/] the models changed without a migration. With the database up to date "
        "(`coach-db deploy`), run `coach-db migrate --name <what changed>` and commit the file. "
        "Aerich would write:"
    )
    console.print(Syntax(drift.sql, "python"))
    raise typer.Exit(1)


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
        out.print(f"[yellow]{len(state.pending)} pending:[/] run `coach-db deploy`.")
    if state.pending or not drift.clean:
        raise typer.Exit(1)
    out.print("[green]Up to date.[/]")


@app.command("deploy")
@friendly
def deploy_command() -> None:
    """Apply pending migrations (non-interactive, safe when several containers start at once)."""
    url = database_url()
    applied = run(deploy(url))
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
    from coach_db.schema import connect_raw

    conn = await connect_raw(url)
    try:
        # The whole schema, so tables, triggers and functions of any migration go too.
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
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
        # Imported here: the seed lives in the repository, not in the installed package.
        from seed.cli import main as seed_main
    except ModuleNotFoundError as exc:
        if exc.name != "seed":
            raise
        raise CoachDbError(
            "No seed package: it lives in the coach-db repository, not in the installed "
            "package. Run `uv run coach-db seed` from a checkout."
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


@app.command()
@friendly
def createstaff(
    email: Annotated[str, typer.Argument(help="E-mail of the staff user.")],
    username: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a staff user for the studio (or make an existing user staff); asks for a password."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise CoachDbError("The password must have at least 8 characters.")
    created = run(_createstaff(email, username, password))
    verb = "Created" if created else "Updated"
    console.print(f"[green]{verb}[/] staff user {email.strip().lower()}.")


async def _createstaff(email: str, username: str | None, password: str) -> bool:
    import coach_db
    from coach_db.passwords import hash_password

    async with coach_db.connect():
        user, created = await coach_db.User.get_or_create(
            email=email,
            defaults={"username": username or email.split("@")[0]},
        )
        user.is_staff = True
        user.password_hash = hash_password(password)
        if username:
            user.username = username
        await user.save()
        return created


@app.command()
@friendly
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the schemas.")] = Path(
        "generated"
    ),
) -> None:
    """Write the JSON Schema of every Pydantic type (for TypeScript clients, docs)."""
    from coach_db import types

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in types.__all__:
        model = getattr(types, name)
        if hasattr(model, "model_json_schema"):
            path = out_dir / f"{name}.schema.json"
            path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n")
            console.print(f"Wrote {path}")


def main() -> None:
    app()
