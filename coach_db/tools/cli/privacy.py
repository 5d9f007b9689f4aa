"""The privacy commands of `coach-db`: export-user, erase-user, erasures, export-transcripts."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from coach_db import privacy
from coach_db.config import database_url
from coach_db.errors import CoachDbError
from coach_db.models import SessionStatus

console = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """The file to write (complete or not at all: written beside it, renamed at the end), or
    standard output."""
    if path is None:
        yield sys.stdout
        return
    partial = path.with_name(f".{path.name}.partial")
    try:
        # Personal data: readable by its owner only.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise CoachDbError(f"Can't write {path}: {exc.strerror}.") from None
    try:
        with open(fd, "w", encoding="utf-8") as file:
            yield file
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def export_user(
    email: Annotated[str, typer.Argument(help="E-mail of the person.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here (mode 0600) instead of stdout.")
    ] = None,
) -> None:
    """Everything stored about one person, as one JSON document (the right of access).

    The document follows coach_db/schemas/user_export.schema.json.
    """
    url = database_url()
    with _output(out_file) as target:
        counts = asyncio.run(privacy.export_user(url, email, target))
    where = f" to {out_file}" if out_file else ""
    console.print(
        f"[green]Exported[/] {counts['sessions']} sessions, {counts['messages']} messages and "
        f"{counts['audit_events']} audit events{where}."
    )


def erase_user(
    email: Annotated[str, typer.Argument(help="E-mail of the person to erase.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a person with all their sessions and messages, and leave an erasure receipt.

    Shows what will be deleted first and asks, unless --yes. One transaction: all or nothing.
    """
    url = database_url()
    planned = asyncio.run(privacy.erasure_counts(url, email))
    _print_counts(f"Erasing user #{planned.user_id} deletes or redacts:", planned.counts)
    if not yes:
        if not sys.stdin.isatty():
            raise CoachDbError("`coach-db erase-user` deletes a person's data: confirm with --yes.")
        typer.confirm("Erase this person's data for good?", abort=True)
    by = f"coach-db erase-user ({getpass.getuser()}@{socket.gethostname()})"
    done = asyncio.run(privacy.erase_user(url, email, by))
    console.print(
        f"[green]Erased[/] user #{done.user_id}: receipt #{done.receipt_id} "
        "(`coach-db erasures` lists receipts)."
    )


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("rows")
    table.add_column("count", justify="right")
    for name, n in counts.items():
        table.add_row(name.replace("_", " "), f"{n:,}")
    console.print(table)


def erasures(
    email: Annotated[
        str | None, typer.Option(help="Only the receipts of this e-mail (by its salted hash).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
) -> None:
    """List erasure receipts, newest first (they hold no personal data)."""
    rows = asyncio.run(privacy.list_erasures(database_url(), email, limit))
    if not out.is_terminal:  # a pipe or a file: one JSON object per line, for scripts
        for row in rows:
            print(privacy.dumps(row))
        return
    # Fits 80 columns: the receipt, the date (UTC, to the minute) and the hash never wrap or
    # get cut; who and what wrap instead.
    table = Table()
    table.add_column("receipt", no_wrap=True, justify="right")
    table.add_column("erased at (UTC)", no_wrap=True, min_width=16)
    table.add_column("by", overflow="fold")
    table.add_column("deleted", overflow="fold")
    table.add_column("e-mail hash", no_wrap=True)
    for row in rows:
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in row["counts"].items())
        table.add_row(
            str(row["id"]),
            f"{row['erased_at']:%Y-%m-%d %H:%M}",
            row["erased_by"],
            counts,
            row["email_hash"][:8] + "…",
        )
    out.print(table)
    if not rows:
        console.print("No erasure receipts" + (" for this e-mail." if email else "."))


def _since(value: str | None) -> str | None:
    """Checked before the command runs: a bad date is a usage error (exit 2)."""
    if value is not None:
        _date(value)
    return value


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        try:
            return datetime.fromisoformat(value).date()
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD).") from None


def export_transcripts(
    out_file: Annotated[Path, typer.Option("--out", help="The JSON Lines file to write.")],
    scenario: Annotated[str | None, typer.Option(help="Only this scenario (its slug).")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only sessions started on or after this date (YYYY-MM-DD).", callback=_since
        ),
    ] = None,
    status: Annotated[SessionStatus | None, typer.Option(help="Only sessions in this state.")] = (
        None
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Transcripts for research: one JSON line per session, no identity, PII scrubbed.

    Each user is a pseudonym (HMAC of the user id with a key made for this export and never
    stored: two exports share no key); no database id or exact time is written (the month a
    session started, message offsets in seconds); e-mails, URLs, IPs, phone numbers, card
    numbers, IBANs and SSNs in messages become placeholders.
    """
    filters = privacy.TranscriptFilter(
        scenario=scenario, since=_date(since) if since else None, status=status
    )
    url = database_url()
    with (
        Progress(
            TextColumn("Sessions"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        ) as bar,
        _output(out_file) as target,
    ):
        task = bar.add_task("export", total=None)

        def progress(total: int | None, done: int) -> None:
            bar.update(task, total=total, completed=done)

        counts = asyncio.run(privacy.export_transcripts(url, target, filters, progress))
    console.print(
        f"[green]Exported[/] {counts['sessions']:,} sessions ({counts['messages']:,} messages) "
        f"to {out_file}."
    )


def register(app: typer.Typer, friendly: Callable[[Any], Any]) -> None:
    """Add the commands to the `coach-db` app, with its one-line error handling."""
    app.command("export-user")(friendly(export_user))
    app.command("erase-user")(friendly(erase_user))
    app.command("erasures")(friendly(erasures))
    app.command("export-transcripts")(friendly(export_transcripts))
