"""The `coach-db` command (also `python -m coach_db`)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.syntax import Syntax

from coach_db.schema import check_drift

app = typer.Typer(help="coach-db: the Conversation Coach database.", no_args_is_help=True)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """coach-db: the Conversation Coach database."""


@app.command()
def check() -> None:
    """Fail when the models changed without a migration (offline: no database needed)."""
    drift = check_drift()
    if drift.clean:
        console.print("[green]No drift:[/] the models match the last migration.")
        return
    console.print(
        "[red]Drift:[/] the models changed without a migration. With the database up to date "
        "(`aerich upgrade`), run `aerich migrate --name <what changed>` and commit the file. "
        "Aerich would write:"
    )
    console.print(Syntax(drift.sql, "python"))
    raise typer.Exit(1)


def main() -> None:
    app()
