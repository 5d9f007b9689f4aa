"""`coach-db check`, `status`, `deploy`, `migrate` and `reset`: the migrations of a database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.syntax import Syntax
from rich.table import Table

from coach_db.config import database_url, mask_url
from coach_db.errors import APPLY_MIGRATIONS, CoachDbError
from coach_db.migrations import check_drift, deploy, make_migration, migration_status
from coach_db.tools.cli.app import app, console, friendly, is_local, out, run, run_seed

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
    from coach_db.tools.codegen import drift as generated_drift
    from coach_db.tools.codegen.prisma import prisma_drift

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
        run_seed(demo=0, random_seed=None)


async def _drop_all(url: str) -> None:
    from coach_db.db import connect_raw
    from coach_db.migrations import drop_project_objects

    conn = await connect_raw(url)
    try:
        await drop_project_objects(conn)
    finally:
        await conn.close()
