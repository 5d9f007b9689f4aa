"""The `coach-db` Typer app and what its commands share: one-line errors, asyncio, the seed hook."""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from coach_db.config import scrub
from coach_db.errors import CoachDbError

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
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if _debug or not isinstance(exc, (CoachDbError, OSError, RuntimeError)):
                # Any URL in the traceback (a parser's message, a repr) loses its password.
                trace = "".join(traceback.format_exception(exc))
                print(scrub(trace), file=sys.stderr, end="")
            else:
                # Our own errors mask URLs already; an OSError may quote anything.
                message = str(exc) if isinstance(exc, CoachDbError) else scrub(str(exc))
                console.print(f"[red]Error:[/] {escape(message)}")
            raise typer.Exit(1) from None

    return wrapper


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def is_local(url: str) -> bool:
    """True for localhost, loopback addresses and Unix sockets."""
    parts = urlsplit(url)
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host", "localhost")
    return host.startswith("/") or host in {"localhost", "127.0.0.1", "::1"}


# --- the seed, which an app provides ----------------------------------------------------------

# `coach-db reset` and `coach-db studio` seed the database they made; the seed app (entry point
# `seed` in the coach_db.commands group) hands its runner here when it registers its command.
_seed_runner: Callable[[list[str]], int] | None = None


def provide_seed(runner: Callable[[list[str]], int]) -> None:
    """Called by the seed app: `runner(argv)` runs `coach-db seed ARGV`, returning its exit code."""
    global _seed_runner
    _seed_runner = runner


def seed_main(argv: list[str]) -> int:
    """Run the seed with `argv` (as `coach-db seed` would); CoachDbError when none is installed."""
    if _seed_runner is None:
        raise CoachDbError(
            "No seed is installed: this coach-db has no `seed` command (entry point group "
            "coach_db.commands). Reinstall coach-db from its wheel, or run `uv run coach-db seed` "
            "from a checkout."
        )
    return _seed_runner(argv)


def run_seed(demo: int, random_seed: int | None) -> None:
    """Run the seed as `coach-db seed` would, raising on failure."""
    argv = ["--demo", str(demo)] if demo else []
    if random_seed is not None:
        argv += ["--random-seed", str(random_seed)]
    if (code := seed_main(argv)) != 0:
        raise typer.Exit(code)


def main() -> None:
    app()
