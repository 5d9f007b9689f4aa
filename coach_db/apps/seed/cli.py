"""The command line of `python -m seed` and `coach-db seed`: options, summary, one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

import coach_db
from coach_db import CoachDbError
from coach_db.apps.seed import (
    DEFAULT_DEMO,
    DEFAULT_RANDOM_SEED,
    Action,
    SeedError,
    SeedResult,
    admin_password_from_env,
    data,
    seed,
)
from coach_db.home import home

# Below this many conversations the load takes well under a second: no bar needed.
PROGRESS_FROM = 200


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Load the development data of Conversation Coach into DATABASE_URL: the test user "
            f"{data.TEST_USER['email']}, the staff account {data.ADMIN_USER['email']} and the "
            "scenarios. Safe to re-run: rows are created or updated, never duplicated."
        ),
        epilog=(
            "SEED_ADMIN_PASSWORD sets the admin's password (and resets it on a re-run); "
            "without it a new admin gets a generated password, printed once on a terminal, "
            "else written to admin-password.txt (mode 0600) in COACH_DB_HOME."
        ),
    )
    parser.add_argument(
        "--demo",
        type=_count,
        nargs="?",
        const=DEFAULT_DEMO,
        default=0,
        metavar="N",
        help=(
            f"also generate N demo conversations (default {DEFAULT_DEMO}), replacing the "
            "previous ones of the demo users"
        ),
    )
    parser.add_argument(
        "--random-seed",
        type=int,
        default=DEFAULT_RANDOM_SEED,
        metavar="S",
        help=f"the demo data for seed S is always the same (default {DEFAULT_RANDOM_SEED})",
    )
    parser.add_argument(
        "--today",
        type=_day,
        default=os.environ.get("SEED_TODAY") or None,
        metavar="YYYY-MM-DD",
        help=(
            "date the demo as if run on this day (18:00 UTC), for identical rows on any day; "
            "default SEED_TODAY, else the demo's conversations end now"
        ),
    )
    return parser


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def main(argv: Sequence[str] | None = None, prog: str = "python -m seed") -> int:
    """Run the seed; return the exit code. Known failures print one line, never a traceback."""
    args = build_parser(prog).parse_args(argv)
    try:
        result = asyncio.run(_run(args.demo, args.random_seed, args.today))
    except (CoachDbError, SeedError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The seed runs in one transaction, which the cancelled task rolls back.
        print(f"{prog}: interrupted, nothing was changed.", file=sys.stderr)
        return 130
    # A generated password goes to the terminal, never into a log: without a terminal
    # (a container, CI, a pipe) it is written to a file only its owner can read.
    print_summary(
        result, Console(), password_file=None if sys.stdout.isatty() else password_file_path
    )
    return 0


async def _run(demo: int, random_seed: int, today: date | None = None) -> SeedResult:
    # Read (and check) SEED_ADMIN_PASSWORD before connecting: a bad value fails fast.
    admin_password = admin_password_from_env()
    async with coach_db.connect():
        return await seed(
            demo=demo,
            random_seed=random_seed,
            admin_password=admin_password,
            progress=demo >= PROGRESS_FROM,
            today=today,
        )


def print_summary(
    result: SeedResult, console: Console, password_file: Callable[[], Path] | None = None
) -> None:
    """The table of what was created, updated or left alone, then the one-time admin password
    (or, with `password_file`, the path of the 0600 file it was written to)."""
    table = Table(title="Seed summary", title_justify="left")
    table.add_column("Rows")
    for action in Action:
        table.add_column(action.value.capitalize(), justify="right")
    for kind, counter in result.counts().items():
        table.add_row(
            f"{kind}s", *(f"{counter[action]:,}" if counter[action] else "·" for action in Action)
        )
    console.print(table)
    for change in result.changes:
        if change.action is Action.UPDATED:
            console.print(f"Updated {change.kind} {change.key}: {', '.join(change.fields)}")
    if result.demo_messages:
        rate = result.demo_messages / result.demo_seconds if result.demo_seconds else 0.0
        console.print(
            f"Demo: {result.demo_sessions:,} conversations, {result.demo_messages:,} messages "
            f"in {result.demo_seconds:.2f} s ({rate:,.0f} messages/s)."
        )
    console.print(f"Done in {result.seconds:.2f} s.")
    if result.generated_admin_password and password_file is not None:
        path = save_password(password_file(), result.generated_admin_password)
        console.print(
            f"\nGenerated a password for {data.ADMIN_USER['email']}: it is in {path} (readable "
            "by its owner only). Store it, then delete the file; or set one with `coach-db "
            "createstaff`.",
            highlight=False,
            markup=False,
            soft_wrap=True,  # the path on one line, so that it copies cleanly
        )
    elif result.generated_admin_password:
        console.print(
            f"\nGenerated a password for {data.ADMIN_USER['email']}; it is shown only this once "
            "(set SEED_ADMIN_PASSWORD to choose your own):",
            highlight=False,
        )
        # Its own line, without markup or wrapping, so that it copies cleanly.
        console.print(
            result.generated_admin_password, markup=False, highlight=False, soft_wrap=True
        )


def password_file_path() -> Path:
    """Where a generated admin password goes when there is no terminal to show it on."""
    return home() / "admin-password.txt"


def save_password(path: Path, password: str) -> Path:
    """Write `password` to `path`, readable and writable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")
    return path
