"""`coach-db createstaff`, `generate` and `retention`: staff users, generated files, old data."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from coach_db.config import database_url
from coach_db.errors import CoachDbError
from coach_db.tools.cli.app import app, console, friendly, out, run

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
    from coach_db.tools import codegen

    if prisma is not None:
        from coach_db.tools.codegen.prisma import write

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
