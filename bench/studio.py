"""Times every studio page on a 100k- and a 10M-message database (not run by the tests).

    uv run python bench/studio.py [--reps 20] [--sizes 100k,10m] [--out bench/results/x.txt]
        [--database-100k NAME] [--database-10m NAME]   # e.g. your own copies of them

Builds the databases once and then reuses them by name (`coach_bench_100k`: `--demo 3210`,
`coach_bench_10m`: `--demo 321000 --random-seed 7`; migrations by `coach-db deploy`, then the
seed, then VACUUM (ANALYZE)). For each, it starts `coach-db studio` (one uvicorn worker) on a
free port, signs in as a staff user made with `coach-db createstaff`, and requests each page
sequentially, alternating between the databases so that a shared machine's load weighs on
both alike (p50 / p95 / p99, HTML bytes), then with 8 clients at once (requests/s, p50, and
the p50 of a transcript page requested meanwhile: whether a heavy page stalls everyone else).
Prints one table with the 10M / 100k growth ratio of p50.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
STAFF_EMAIL = "bench-staff@example.com"
PAGE_SIZE = 20  # the studio's list page size (coach_db/apps/studio/resources.py)
CONCURRENCY = 8


@dataclass(frozen=True)
class Size:
    label: str
    database: str
    seed_args: tuple[str, ...]
    sessions: int  # demo conversations: how a reused database is recognised as complete


SIZES = {
    "100k": Size("100k", "coach_bench_100k", ("--demo", "3210"), 3210),
    "10m": Size("10M", "coach_bench_10m", ("--demo", "321000", "--random-seed", "7"), 321000),
}


@dataclass
class Targets:
    """Ids the page URLs need, read from the database."""

    session: int
    message: int
    messages: int
    page_100: str  # the cursor of the 100th page of messages (after its 1,980th row)
    email: str  # a demo user's e-mail, for the session lookup

    def pages(self) -> dict[str, str]:
        return {
            "dashboard": "/admin/",
            "users list": "/admin/user/list",
            "users last page": "/admin/user/list?end=1",
            "sessions list": "/admin/conversationsession/list",
            "sessions last page": "/admin/conversationsession/list?end=1",
            "messages list p1": "/admin/message/list",
            "messages list p100": f"/admin/message/list?after={self.page_100}",
            "messages list last page": "/admin/message/list?end=1",
            'messages search "listen"': "/admin/message/list?q=listen",
            # Words of several frequencies at 10M: 5%, 0.5%, 0.015% of messages, and none.
            'messages search "uncle"': "/admin/message/list?q=uncle",
            'messages search "sounded"': "/admin/message/list?q=sounded",
            'messages search "where"': "/admin/message/list?q=where",
            'messages search "zebra"': "/admin/message/list?q=zebra",
            'search "listen", newest first': "/admin/message/list?q=listen&sort=-timestamp",
            "messages by session": f"/admin/message/list?session_id={self.session}",
            "transcript": f"/admin/conversationsession/transcript/{self.session}",
            "message edit form": f"/admin/message/update/{self.message}",
            "session edit form": f"/admin/conversationsession/update/{self.session}",
            "session lookup by e-mail": f"/admin/lookup/conversationsession?q={self.email}",
            "session lookup by number": f"/admin/lookup/conversationsession?q={self.session}",
        }


@dataclass
class PageResult:
    seconds: list[float] = field(default_factory=list)
    html_bytes: int = 0
    concurrent_rate: float = 0.0
    concurrent_p50: float = 0.0
    bystander_p50: float = 0.0  # a transcript page, requested while 8 clients load this one
    bystander_max: float = 0.0

    def quantile(self, q: float) -> float:
        values = sorted(self.seconds)
        return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def _url(server: str, database: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{database}"))


def _cli(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "coach_db", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"coach-db {args[0]} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


async def ensure_database(server: str, size: Size, log: Callable[[str], None]) -> str:
    """The database of `size`, built when missing or incomplete; returns its URL."""
    url = _url(server, size.database)
    admin = await asyncpg.connect(server)
    try:
        exists = await admin.fetchval(
            "SELECT true FROM pg_database WHERE datname = $1", size.database
        )
        if not exists:
            await admin.execute(f'CREATE DATABASE "{size.database}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        complete = (
            await conn.fetchval("SELECT to_regclass('conversation_session') IS NOT NULL")
            and await conn.fetchval(
                'SELECT count(*) FROM conversation_session s JOIN "user" u ON u.id = s.user_id'
                " WHERE u.email LIKE 'demo%@example.com'"
            )
            == size.sessions
        )
    finally:
        await conn.close()
    env = {**os.environ, "DATABASE_URL": url}
    if not complete:
        log(f"Building {size.database} (coach-db deploy + seed {' '.join(size.seed_args)}) ...")
        started = time.perf_counter()
        _cli("deploy", env=env)
        _cli("seed", *size.seed_args, env=env)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM (ANALYZE)")
        finally:
            await conn.close()
        log(f"  built in {time.perf_counter() - started:.0f} s")
    else:  # a database built by an older checkout gets this one's migrations
        _cli("deploy", env=env)
    return url


async def targets(url: str) -> Targets:
    conn = await asyncpg.connect(url)
    try:
        # A completed session of typical length, half-way through the table's history.
        session = await conn.fetchval(
            "SELECT id FROM conversation_session WHERE status = 'completed'"
            " AND total_messages BETWEEN 30 AND 60 ORDER BY id"
            " OFFSET (SELECT count(*) / 2 FROM conversation_session WHERE status = 'completed'"
            " AND total_messages BETWEEN 30 AND 60) LIMIT 1"
        )
        message = await conn.fetchval(
            "SELECT id FROM message WHERE session_id = $1 ORDER BY id LIMIT 1", session
        )
        messages = await conn.fetchval("SELECT count(*) FROM message")
        # What "next" from page 99 links to: the (timestamp, id) of its last row.
        row = await conn.fetchrow(
            "SELECT timestamp, id FROM message ORDER BY timestamp, id"
            f" OFFSET {99 * PAGE_SIZE - 1} LIMIT 1"
        )
        email = await conn.fetchval(
            "SELECT email FROM \"user\" WHERE email LIKE 'demo%' ORDER BY id LIMIT 1"
        )
    finally:
        await conn.close()
    assert row is not None, "fewer than 100 pages of messages"
    page_100 = quote(f"{row['timestamp'].astimezone(UTC).isoformat()},{row['id']}", safe="")
    return Targets(session, message, messages, page_100, email or "demo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Studio:
    """`coach-db studio` against one database, on a free port, with its own Redis key prefix."""

    def __init__(self, url: str, redis_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"bench-{secrets.token_hex(4)}:",
        }
        self.process: asyncio.subprocess.Process | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __aexit__

    async def __aenter__(self) -> Studio:
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "coach_db", "studio", "--no-migrate", "--port", str(self.port)),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,  # a file, not a pipe: a full pipe would stall the studio
        )
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if self.process.returncode is not None:
                    self.log.seek(0)
                    raise SystemExit(f"the studio stopped:\n{self.log.read().decode()}")
                try:
                    await client.get(f"{self.base}/admin/login")
                    return self
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise SystemExit("the studio did not answer within 60 s")

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.log.close()


async def sign_in(base: str, password: str) -> httpx.Cookies:
    # One argon2 verification: seconds on a loaded machine, beyond httpx's default 5 s.
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        await client.get("/admin/login")
        # "studio_csrf", or "studio_csrf_<port>" since cookie names follow the public port.
        token = next(c.value for c in client.cookies.jar if c.name.startswith("studio_csrf"))
        response = await client.post(
            "/admin/login",
            data={"email": STAFF_EMAIL, "password": password, "csrf_token": token},
        )
        if response.status_code != 303 or "/admin/login" in response.headers.get("location", ""):
            raise SystemExit(f"sign-in failed: HTTP {response.status_code}")
        return client.cookies


async def fetch(client: httpx.AsyncClient, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.get(path)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: HTTP {response.status_code}")
    return seconds, len(response.content)


async def time_sequential(
    studios: list[tuple[str, httpx.Cookies, dict[str, str]]], reps: int, budget: float
) -> list[dict[str, PageResult]]:
    """Each page requested one at a time, alternating between the studios (100k, 10M, 100k,
    ...), so that the load of a shared machine weighs on both sides of the ratio alike."""
    results: list[dict[str, PageResult]] = [{} for _ in studios]
    timeout = httpx.Timeout(600.0)
    clients = [
        httpx.AsyncClient(base_url=base, cookies=cookies, timeout=timeout)
        for base, cookies, _ in studios
    ]
    try:
        for name in studios[0][2]:
            for client, (_, _, pages), result in zip(clients, studios, results, strict=True):
                result[name] = PageResult()
                await fetch(client, pages[name])  # warm: templates, statement caches, buffers
            started = time.perf_counter()
            # Every page at least 3 times; slow pages stop early once they used their budget.
            while len(results[0][name].seconds) < reps and (
                len(results[0][name].seconds) < 3 or time.perf_counter() - started < budget
            ):
                for client, (_, _, pages), result in zip(clients, studios, results, strict=True):
                    seconds, result[name].html_bytes = await fetch(client, pages[name])
                    result[name].seconds.append(seconds)
    finally:
        for client in clients:
            await client.aclose()
    return results


async def time_concurrent(
    base: str,
    cookies: httpx.Cookies,
    pages: dict[str, str],
    results: dict[str, PageResult],
    reps: int,
    budget: float,
) -> None:
    """Each page by 8 clients at once, with a transcript page requested meanwhile."""
    timeout = httpx.Timeout(600.0)
    bystander = pages["transcript"]
    for name, path in pages.items():
        result = results[name]
        clients = [
            httpx.AsyncClient(base_url=base, cookies=cookies, timeout=timeout)
            for _ in range(CONCURRENCY + 1)
        ]
        try:
            per_client = max(1, min(reps // 2, math.ceil(budget / 8 / result.quantile(0.5))))
            latencies: list[float] = []
            beside: list[float] = []
            running = True

            async def worker(c: httpx.AsyncClient) -> None:
                for _ in range(per_client):  # noqa: B023 - per page on purpose
                    latencies.append((await fetch(c, path))[0])  # noqa: B023

            async def watcher(c: httpx.AsyncClient) -> None:
                while running:  # noqa: B023
                    beside.append((await fetch(c, bystander))[0])  # noqa: B023
                    await asyncio.sleep(0.05)

            watch = asyncio.create_task(watcher(clients[-1]))
            started = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in clients[:-1]))
            elapsed = time.perf_counter() - started
            running = False
            await watch
            result.concurrent_rate = len(latencies) / elapsed
            result.concurrent_p50 = statistics.median(latencies)
            result.bystander_p50 = statistics.median(beside)
            result.bystander_max = max(beside)
        finally:
            for c in clients:
                await c.aclose()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"


def report(runs: dict[str, dict[str, PageResult]]) -> str:
    labels = list(runs)
    lines = []
    head = "| page | " + " | ".join(
        f"{label} p50 / p95 / p99 ms | {label} HTML" for label in labels
    )
    if len(labels) == 2:
        head += f" | p50 {labels[1]} / {labels[0]}"
    lines.append(head + " |")
    lines.append("|" + "---|" * (1 + 2 * len(labels) + (len(labels) == 2)))
    for page in next(iter(runs.values())):
        cells = []
        for label in labels:
            r = runs[label][page]
            cells.append(
                f"{_ms(r.quantile(0.5))} / {_ms(r.quantile(0.95))} / {_ms(r.quantile(0.99))}"
            )
            cells.append(_kb(r.html_bytes))
        if len(labels) == 2:
            a, b = (runs[label][page].quantile(0.5) for label in labels)
            cells.append(f"{b / a:.1f}x")
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"{CONCURRENCY} clients at once: requests/s, p50 ms, and the p50 / max ms of a transcript"
        " page requested meanwhile"
    )
    lines.append(
        "| page | " + " | ".join(f"{label} req/s · p50 · transcript" for label in labels) + " |"
    )
    lines.append("|" + "---|" * (1 + len(labels)))
    for page in next(iter(runs.values())):
        cells = [
            f"{runs[label][page].concurrent_rate:,.1f} · {_ms(runs[label][page].concurrent_p50)}"
            f" · {_ms(runs[label][page].bystander_p50)} / {_ms(runs[label][page].bystander_max)}"
            for label in labels
        ]
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> str:
    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    runs: dict[str, dict[str, PageResult]] = {}
    notes: list[str] = []
    password = secrets.token_urlsafe(16)
    databases = {"100k": args.database_100k, "10m": args.database_10m}
    prepared: list[tuple[str, str, Targets]] = []
    for key in args.sizes.split(","):
        key = key.strip().lower()
        size = SIZES[key]
        if databases[key]:
            size = replace(size, database=databases[key])
        url = await ensure_database(args.server, size, log)
        _cli(
            "createstaff",
            STAFF_EMAIL,
            "--password-stdin",
            env={**os.environ, "DATABASE_URL": url},
            stdin=password + "\n",
        )
        found = await targets(url)
        notes.append(f"{size.label}: {size.database}, {found.messages:,} messages")
        prepared.append((size.label, url, found))
    load_before = os.getloadavg()[0]
    async with AsyncExitStack() as stack:
        studios = []
        for _, url, found in prepared:
            studio = await stack.enter_async_context(Studio(url, args.redis))
            studios.append((studio.base, await sign_in(studio.base, password), found.pages()))
        log("Timing the pages one at a time, alternating between the databases ...")
        sequential = await time_sequential(studios, args.reps, args.budget)
        for (label, _, _), (base, cookies, pages), results in zip(
            prepared, studios, sequential, strict=True
        ):
            log(f"Timing {label} with {CONCURRENCY} clients at once ...")
            await time_concurrent(base, cookies, pages, results, args.reps, args.budget)
            runs[label] = results
    notes.append(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    conn = await asyncpg.connect(args.server)
    try:
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    git = await asyncio.create_subprocess_exec(
        *("git", "log", "-1", "--format=%h %s"), cwd=ROOT, stdout=subprocess.PIPE
    )
    commit = (await git.communicate())[0].decode().strip()
    header = [
        f"coach-db studio benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}",
        f"PostgreSQL {version}, {os.cpu_count()} cores (shared), one uvicorn worker;"
        f" up to {args.reps} sequential requests per page (fewer past {args.budget:.0f} s)",
        *notes,
        "",
    ]
    return "\n".join(header) + report(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="sequential requests per page")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds per page before stopping early"
    )
    parser.add_argument("--sizes", default="100k,10m", help="which databases: 100k, 10m")
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="the PostgreSQL server holding (or getting) the coach_bench_* databases",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="Redis for the studio's sign-ins (keys get a per-run prefix)",
    )
    for key, size in SIZES.items():
        parser.add_argument(
            f"--database-{key}",
            help=f"use (or build) this database instead of {size.database}, e.g. your own copy",
        )
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    text = asyncio.run(bench(args))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
