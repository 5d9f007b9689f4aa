"""`coach-db seed`, which the seed adds to the CLI (entry point `seed`, group coach_db.commands)."""

from __future__ import annotations

from collections.abc import Callable

import typer


def _main(argv: list[str]) -> int:
    from coach_db.apps.seed.cli import main  # imported when run: the CLI starts without Tortoise

    return main(argv, prog="coach-db seed")


def seed(ctx: typer.Context) -> None:
    """Load the development data; --demo N adds demo conversations (--help for the options)."""
    raise typer.Exit(_main(ctx.args))


def register(
    app: typer.Typer, friendly: Callable[[Callable[..., None]], Callable[..., None]]
) -> None:
    """Add `coach-db seed` to the CLI, and give `coach-db reset` / `studio` the seed to run."""
    # The options are parsed by the seed's own argparse (so `--demo` alone means 20, as in
    # `python -m seed`); typer only forwards them, and `--help` too.
    app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(friendly(seed))
    from coach_db.tools.cli.app import provide_seed  # here: the CLI imports this module

    provide_seed(_main)
