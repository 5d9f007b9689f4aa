"""`coach-db studio`, which the studio adds to the CLI (entry point `studio`, coach_db.commands)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from coach_db.apps.studio import STUDIO_MODULES, studio_not_installed
from coach_db.config import database_url, get_settings, mask_url
from coach_db.errors import CoachDbError, PendingMigrations
from coach_db.home import home, running_state
from coach_db.migrations import deploy, migration_status

# This module imports no CLI module (the CLI imports it, through its entry point): its own
# console, as the CLI's, and the CLI's seed runner imported when needed.
console = Console(stderr=True, soft_wrap=True, highlight=False)
R = TypeVar("R")


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


# --- the studio (the main job) ---------------------------------------------------------------


def studio(
    host: Annotated[str | None, typer.Option(help="Default: STUDIO_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: STUDIO_PORT or 5555.")] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
) -> None:
    """Open the studio on http://127.0.0.1:5555, with embedded servers when no URLs are set.

    Without DATABASE_URL / REDIS_URL it starts PostgreSQL and Redis from their wheels, keeping
    the data in COACH_DB_HOME (default: the user's data folder, ~/.local/share/coach-db). Then
    it applies pending migrations, seeds an empty database, and serves until Ctrl-C, which
    stops everything it started.
    """
    _require_studio()
    from coach_db.apps.studio import assets
    from coach_db.apps.studio.app import serve
    from coach_db.apps.studio.config import get_studio_settings
    from coach_db.tools.embedded import EmbeddedServers

    settings = get_studio_settings()
    settings = settings.model_copy(
        update={
            "studio_host": host or settings.studio_host,
            "studio_port": port or settings.studio_port,
        }
    )
    _check_port_free(settings.studio_host, settings.studio_port)
    if assets.missing():
        console.print("Building the studio's pinned CSS and JS (npm ci, needed once) ...")
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
        _prepare_database(url, migrate)
        _announce(settings.studio_host, settings.studio_port, embedded=need_postgres or need_redis)
        run(serve(settings, announce=False))
    except KeyboardInterrupt:
        pass
    finally:
        # Ctrl-C reaches every process of the terminal, often twice (uv forwards it): let
        # nothing interrupt the shutdown of the servers we started.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        servers.stop()
    console.print("Studio stopped.")


def _prepare_database(url: str, migrate: bool) -> None:
    """Apply pending migrations and seed an empty database; with --no-migrate, refuse pending."""
    if migrate:
        for name in run(deploy(url)):
            console.print(f"[green]Applied[/] {name}")
        if run(_count_users(url)) == 0:
            from coach_db.tools.cli.app import run_seed  # the seed app's, if installed

            console.print("The database is empty: seeding it.")
            run_seed(demo=20, random_seed=None)
    elif pending := run(migration_status(url)).pending:
        # The models would ask for columns the database lacks: every such page a 500.
        raise PendingMigrations(pending)


def _announce(host: str, port: int, embedded: bool) -> None:
    """Where the studio is, how to sign in, and what Ctrl-C stops."""
    where = f"http://{_display_host(host)}:{port}/admin/"
    stops = " and the embedded servers" if embedded else ""
    console.print(
        f"\n[bold green]Studio:[/] {where}\n"
        "Sign in as a staff user: admin@example.com, with the password the first seed\n"
        "showed or SEED_ADMIN_PASSWORD (without a terminal, the seed wrote it to\n"
        f"  {home() / 'admin-password.txt'}),\n"
        "or make one with `coach-db createstaff EMAIL`.\n"
        f"Ctrl-C stops the studio{stops}."
    )


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


def _require_studio() -> None:
    import importlib.util

    absent = [name for name in STUDIO_MODULES if importlib.util.find_spec(name) is None]
    if absent:
        raise CoachDbError(studio_not_installed(", ".join(absent)))


async def _count_users(url: str) -> int:
    from coach_db.db import connect_raw

    conn = await connect_raw(url)
    try:
        return int(await conn.fetchval('SELECT count(*) FROM "user"'))
    finally:
        await conn.close()


def register(
    app: typer.Typer, friendly: Callable[[Callable[..., None]], Callable[..., None]]
) -> None:
    """Add `coach-db studio` to the CLI."""
    app.command()(friendly(studio))
