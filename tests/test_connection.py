"""DATABASE_URL at run time: settings, and the message a newcomer sees for each mistake."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
from tortoise import connections

from coach_db.config import (
    MultiHostConnect,
    database_url,
    mask_url,
    replica_urls,
    tortoise_config,
)
from coach_db.errors import DatabaseUrlInvalid, DatabaseUrlMissing
from tests.processes import subprocess_env

CONNECT_AND_COUNT = """
import asyncio, coach_db
async def main():
    async with coach_db.connect():
        print("scenarios:", await coach_db.Scenario.filter(is_active=True).count())
asyncio.run(main())
"""


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with DATABASE_URL etc. as given (None removes)."""
    full_env = {k: v for k, v in subprocess_env().items() if not k.startswith("DB_")}
    full_env.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # not the repository: a service importing the installed package
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + result.stderr).strip().splitlines()[-1]


# --- settings -----------------------------------------------------------------------------


def test_importing_the_package_needs_no_url_and_never_connects() -> None:
    code = "import coach_db, coach_db.config, coach_db.types, coach_db.models; print('ok')"
    assert run_python(code).stdout.strip() == "ok"
    # A URL pointing at nothing proves import does not connect (it would fail).
    unreachable = run_python(code, DATABASE_URL="postgres://u:p@127.0.0.1:1/none")
    assert unreachable.stdout.strip() == "ok", unreachable.stderr


def test_tortoise_orm_without_database_url_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir("/")  # no .env file
    with pytest.raises(DatabaseUrlMissing, match="DATABASE_URL is not set"):
        import coach_db.config

        _ = coach_db.config.TORTOISE_ORM


def test_pool_settings_come_from_env_and_the_query_string_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "3")
    monkeypatch.setenv("DB_STATEMENT_CACHE_SIZE", "0")
    url = database_url("postgresql+asyncpg://u:p@db:6432/coach?maxsize=7&application_name=svc")
    assert url.startswith("postgres://u:p@db:6432/coach?")
    assert "maxsize=7" in url  # the URL's own value wins over DB_POOL_MAX_SIZE
    assert "statement_cache_size=0" in url  # PgBouncer transaction mode
    assert "application_name=svc" in url and "minsize=1" in url


def test_the_suites_pool_uses_the_default_sizes() -> None:
    client = connections.get("default")
    assert (client.pool_minsize, client.pool_maxsize) == (1, 10)  # type: ignore[attr-defined]


def test_tortoise_config_registers_models_and_aerich() -> None:
    config = tortoise_config("postgres://u@h/d")
    assert config["apps"]["models"]["models"] == ["coach_db.models", "aerich.models"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://bob:s3cret@db:5432/coach", "postgres://bob:***@db:5432/coach"),
        ("postgres://bob@db/coach?maxsize=3", "postgres://bob@db/coach"),
        (
            "postgres://postgres:@/postgres?host=/tmp/pg",
            "postgres://postgres:@/postgres?host=/tmp/pg",
        ),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("unix:///tmp/redis.sock?db=2", "unix:///tmp/redis.sock"),
    ],
)
def test_mask_url_hides_passwords(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://u@h/d", "unsupported scheme 'mysql'"),
        ("not a url", "unsupported scheme"),
        # Never the parser's own message ("Port could not be cast ..."): it quotes the URL.
        ("postgres://u:s3cret@h:notaport/d", "the port must be a number"),
        ("postgres://u@h", "no database name"),
        ("postgres:///d", "no host"),
    ],
)
def test_malformed_url_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(DatabaseUrlInvalid, match=reason) as info:
        database_url(url)
    assert "s3cret" not in str(info.value)


# --- each newcomer's mistake, as the newcomer sees it ---------------------------------------


def test_missing_database_url_message() -> None:
    result = run_python(CONNECT_AND_COUNT)
    assert result.returncode == 1
    assert last_line(result) == (
        "coach_db.errors.DatabaseUrlMissing: DATABASE_URL is not set. Set it to your PostgreSQL "
        "server, for example DATABASE_URL=postgres://user:password@localhost:5432/coach, "
        "or run `coach-db studio`, which starts an embedded server."
    )


def test_malformed_database_url_message() -> None:
    result = run_python(CONNECT_AND_COUNT, DATABASE_URL="postgresql//bob:s3cret@localhost/coach")
    assert "is not a valid PostgreSQL URL" in last_line(result)
    assert "s3cret" not in result.stderr


def test_unreachable_server_message_shows_host_and_port_but_not_the_password() -> None:
    result = run_python(CONNECT_AND_COUNT, DATABASE_URL="postgres://bob:s3cret@127.0.0.1:1/coach")
    assert last_line(result) == (
        "coach_db.errors.DatabaseUnreachable: Can't reach the database server at 127.0.0.1:1 "
        "(postgres://bob:***@127.0.0.1:1/coach): connection refused. "
        "Is PostgreSQL running there, and does DATABASE_URL point at it?"
    )
    assert "s3cret" not in result.stdout + result.stderr


async def test_missing_database_message(database_url: str) -> None:
    url = database_url.rsplit("/", 1)[0] + "/no_such_db"
    if "?" in database_url:  # embedded server: socket directory in the query string
        base, query = database_url.split("?", 1)
        url = base.rsplit("/", 1)[0] + "/no_such_db?" + query
    result = run_python(CONNECT_AND_COUNT, DATABASE_URL=url)
    assert 'Database "no_such_db" does not exist' in last_line(result)
    assert "createdb" in last_line(result)


async def test_unapplied_migrations_message_names_coach_db_deploy(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    empty = await create_database()
    result = run_python(CONNECT_AND_COUNT, DATABASE_URL=empty)
    assert last_line(result).startswith("coach_db.errors.MigrationsNotApplied: The database has")
    assert "apply the migrations with `coach-db deploy`" in last_line(result)


async def test_wrong_user_is_access_denied_not_unreachable(database_url: str) -> None:
    parts = urlsplit(database_url)  # any server: the user is swapped, host and query kept
    host_port = parts.netloc.rsplit("@", 1)[-1]
    url = urlunsplit(parts._replace(netloc=f"nobody:s3cret@{host_port}"))
    result = run_python(CONNECT_AND_COUNT, DATABASE_URL=url)
    assert "refused the login" in last_line(result)
    assert "s3cret" not in result.stdout + result.stderr


async def test_connect_and_lifespan_work_from_a_service(database_url: str) -> None:
    code = """
    import asyncio, coach_db
    from coach_db import Scenario

    async def main():
        async with coach_db.connect():
            print("connect:", await Scenario.filter(is_active=True).count())
        # lifespan: queries from tasks other than the one that opened the pool
        async with coach_db.lifespan(None):
            async def count():
                return await Scenario.all().count()
            counts = await asyncio.gather(*(asyncio.create_task(count()) for _ in range(3)))
            print("lifespan:", counts)
        await coach_db.init_db()
        await coach_db.init_db()  # a second call replaces the pool instead of failing
        print("init twice:", await Scenario.all().count())
        await coach_db.close_db()

    asyncio.run(main())
    """
    result = run_python(code, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["connect: 0", "lifespan: [0, 0, 0]", "init twice: 0"]


# --- several hosts (issue 22) ------------------------------------------------------------------


def test_a_multi_host_url_keeps_every_host_and_asks_for_the_primary() -> None:
    url = database_url("postgres://coach:pw@h1:5432,h2:5433,h3/coach")
    parts = urlsplit(url)
    assert parts.netloc == "coach:pw@h1:5432,h2:5433,h3:5432"
    assert "target_session_attrs=read-write" in parts.query
    connection = tortoise_config(url)["connections"]["default"]
    assert connection["credentials"]["connect"] == MultiHostConnect(
        ("h1", "h2", "h3"), (5432, 5433, 5432)
    )
    assert connection["credentials"]["password"] == "pw"


def test_a_single_host_url_stays_a_url_with_the_target_given() -> None:
    url = database_url("postgres://coach:pw@h1:5432/coach?target_session_attrs=standby")
    assert tortoise_config(url)["connections"]["default"] == url
    assert "target_session_attrs=standby" in url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgres://coach:pw@h1:5432,h2:99999/coach", "port from 1 to 65535"),
        ("postgres://coach:pw@h1,,h2/coach", "each host of a multi-host URL"),
        ("postgres://coach:pw@h1/coach?target_session_attrs=master", "must be one of"),
        ("postgres://coach:pw@h1,h2", "no database name"),
    ],
)
def test_a_bad_multi_host_url_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(DatabaseUrlInvalid, match=reason) as caught:
        database_url(url)
    assert "pw" not in str(caught.value)


def test_a_replica_url_with_several_hosts_may_prefer_a_standby() -> None:
    [url] = replica_urls("postgres://coach:pw@h1,h2/coach?target_session_attrs=prefer-standby")
    assert "target_session_attrs=prefer-standby" in url
    assert urlsplit(url).netloc == "coach:pw@h1:5432,h2:5432"
