"""What the benchmarks share: the server option and a throw-away database with the migrations."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER),
        help="a PostgreSQL server the benchmark may create a database on",
    )


async def _admin(server: str, sql: str) -> str:
    """Run `sql` on the server's own database; the server's version."""
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@contextmanager
def migrated_database(server: str, prefix: str = "coach_bench_") -> Iterator[tuple[str, str]]:
    """A new database on `server` with every migration applied (`coach-db deploy`), dropped
    afterwards: (its URL, the server's version)."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    version = asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        deploy = subprocess.run(
            [sys.executable, "-m", "coach_db", "deploy"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
        )
        if deploy.returncode:
            raise SystemExit(deploy.stdout + deploy.stderr)
        yield url, version
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
