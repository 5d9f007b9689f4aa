"""The accountability commands of `coach-db`: audit verify / checkpoint, runtime-role."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from coach_db.config import database_url
from coach_db.errors import CoachDbError
from coach_db.tools import audit_chain
from coach_db.tools.roles import runtime as runtime_role

console = Console(stderr=True, soft_wrap=True, highlight=False)
audit = typer.Typer(help="The audit trail's hash chain: verify it, export its head.")


def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A checkpoint written earlier: also catch a rewrite or a cut tail."),
    ] = None,
) -> None:
    """Recompute every audit row's seal; report the first row changed, deleted or inserted.

    Exit 0 when the whole chain holds (and matches the checkpoint), 1 otherwise.
    """
    expected = audit_chain.Checkpoint.load(checkpoint) if checkpoint else None
    report = asyncio.run(audit_chain.verify(database_url(), expected))
    if report.problem is not None:
        console.print(f"[red]The audit trail was tampered with:[/] {report.problem}")
        raise typer.Exit(1)
    against = f", and matches the checkpoint at position {expected.seq}" if expected else ""
    console.print(
        f"[green]The audit trail is intact:[/] {report.rows:,} rows chained{against} "
        f"({report.redacted_fields:,} values redacted by erasures)."
    )


def checkpoint(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write it to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the chain head (position and hash of the last row), to keep outside the database.

    `coach-db audit verify --checkpoint FILE` later proves that nothing up to it changed.
    """
    head = asyncio.run(audit_chain.checkpoint(database_url()))
    if out_file is None:
        print(head.dumps(), end="")
        return
    try:
        partial = out_file.with_name(f".{out_file.name}.partial")
        partial.write_text(head.dumps())
        os.replace(partial, out_file)
    except OSError as exc:
        raise CoachDbError(f"Can't write {out_file}: {exc.strerror}.") from None
    console.print(f"[green]Checkpoint[/] at position {head.seq} written to {out_file}.")


def runtime_role_command(
    role: Annotated[str, typer.Argument(help="The role services and the studio connect as.")],
    apply: Annotated[
        bool, typer.Option("--apply", help="Run the statements (as the owner) instead of printing.")
    ] = False,
) -> None:
    """The GRANT statements that make ROLE the runtime role: the application's tables, only
    SELECT and INSERT on the audit trail, SELECT on receipts, erase_person(); nothing else.

    Does not create the role (CREATE ROLE name LOGIN PASSWORD '...' is yours to run). Run it
    again after each `coach-db deploy` that adds tables.
    """
    url = database_url()
    if apply:
        done = asyncio.run(runtime_role.apply(url, role))
        console.print(f"[green]Granted[/] {role!r} the runtime role's rights:")
        console.print(done.sql, end="", markup=False)
        return
    plan, found = asyncio.run(runtime_role.show(url, role))
    print(plan.sql, end="")
    for problem in found:
        console.print(f"[yellow]Warning:[/] {role!r}: {problem}.")


def register(app: typer.Typer, friendly: Callable[[Any], Any]) -> None:
    """Add the commands to the `coach-db` app, with its one-line error handling."""
    audit.command("verify")(friendly(verify))
    audit.command("checkpoint")(friendly(checkpoint))
    app.add_typer(audit, name="audit")
    app.command("runtime-role")(friendly(runtime_role_command))
