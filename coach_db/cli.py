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


# The options are parsed by the seed's own argparse (so `--demo` alone means 20, as in
# `python -m seed`); typer only forwards them, and `--help` too.
@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def seed(ctx: typer.Context) -> None:
    """Load the development data; --demo N adds demo conversations (--help for the options)."""
    try:
        # Imported here: the seed lives in the repository, not in the installed package.
        from seed.cli import main as seed_main
    except ModuleNotFoundError as exc:
        if exc.name != "seed":
            raise
        console.print(
            "[red]No seed package:[/] it lives in the coach-db repository, not in the "
            "installed package. Run `uv run coach-db seed` from a checkout."
        )
        raise typer.Exit(1) from None
    raise typer.Exit(seed_main(ctx.args, prog="coach-db seed"))


def main() -> None:
    app()
