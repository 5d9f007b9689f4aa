"""No password from DATABASE_URL or REDIS_URL appears in any output, however it is written.

People paste passwords with reserved characters un-encoded; every command, error and log line
must still mask them. The check: no 3-character piece of the password appears anywhere.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from coach_db.apps.studio.app import RedisUnreachable, RedisUrlInvalid, redis_client
from coach_db.apps.studio.config import StudioSettings
from coach_db.config import (
    SecretsFilter,
    Settings,
    database_url,
    mask_url,
    remember_secrets,
    tortoise_config,
)
from coach_db.db import connection_errors
from coach_db.errors import CoachDbError
from tests.processes import ROOT, free_port, subprocess_env
from tests.throwaway import ThrowawayPostgres

CreateDatabase = Callable[[], Awaitable[str]]

RESERVED = "/?#@:%[]+ "
# Each reserved character alone (twice), then the reported cases and combinations. Letters
# in odd case, so that a 3-character piece cannot occur in the output by chance.
PASSWORDS = [
    *(f"Kq{c}Zv{c}{c}Wj" for c in RESERVED),
    "Kq/?#@:%[]+ Zv",
    "Xb/Cd+Ef",  # ab/cd+ef: printed whole
    "Xbc#Dqf",  # abc#def: "Port could not be cast to integer value as 'abc'"
    "pQ@sS:w0rD",  # p@ss:w0rd: a traceback ending in 'w0rd@127.0.0.1:1'
    "@Kq:Zv/",
    "Kq]Zv[Wj",
    "Kq%2FZv%4",
    " Kq Zv ",
]
# The subprocess runs take a second or more each: one password per way the parsers failed
# (printed whole, the port parser's message, a traceback), and one that reaches the server.
COMMAND_PASSWORDS = ["Xb/Cd+Ef", "Xbc#Dqf", "pQ@sS:w0rD", "Kq%Zv:Wj+"]


def pieces(secret: str) -> set[str]:
    return {secret[i : i + 3] for i in range(len(secret) - 2)}


def assert_no_piece(output: str, *secrets: str) -> None:
    leaked = sorted(p for s in secrets for p in pieces(s) if p in output)
    assert leaked == [], f"pieces of the password in the output: {leaked}\n{output}"


def pg_url(password: str) -> str:
    return f"postgres://coach:{password}@127.0.0.1:1/coach"


def redis_url_with(password: str) -> str:
    return f"redis://:{password}@127.0.0.1:1/0"


def with_password(url: str, password: str) -> str:
    """`url` (a server the tests may use) with `password`, correctly percent-encoded."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username or 'postgres'}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


# --- in process: every password of the table ---------------------------------------------


def test_mask_url_hides_any_password() -> None:
    for password in PASSWORDS:
        for url, where in (
            (pg_url(password), "postgres://coach:***@127.0.0.1:1/coach"),
            (redis_url_with(password), "redis://:***@127.0.0.1:1/0"),
            (f"unix://:{password}@/tmp/r.sock?db=1", "unix://:***@/tmp/r.sock"),
            (f"{pg_url(password)}?password={password}&host=/run/pg", None),
        ):
            masked = mask_url(url)
            assert_no_piece(masked, password)
            assert where is None or masked == where, (password, masked)


def test_a_malformed_database_url_is_a_clear_error_without_the_password() -> None:
    for password in PASSWORDS:
        try:
            database_url(pg_url(password))
        except CoachDbError as exc:
            assert_no_piece(str(exc) + repr(exc), password)
        # Accepted (no reserved character that parsers disagree on): the password is intact.
        else:
            assert set(password) <= set("%:+Kq2FZvWj4")


def test_connection_errors_never_quote_the_password() -> None:
    for password in PASSWORDS:
        url = pg_url(quote(password, safe=""))
        # The driver's reason may echo what it was given: it is scrubbed, raw or encoded.
        for driver_error in (
            OSError(f"connect failed for {password} / {quote(password, safe='')}"),
            asyncpg.InvalidPasswordError(f"password {password} refused"),
        ):
            with pytest.raises(CoachDbError) as caught, connection_errors(url):
                raise driver_error
            assert_no_piece(
                str(caught.value) + repr(caught.value), password, quote(password, safe="")
            )


def test_settings_objects_never_show_urls() -> None:
    for password in PASSWORDS:
        settings = StudioSettings(database_url=pg_url(password), redis_url=redis_url_with(password))
        assert_no_piece(repr(settings) + str(settings), password)
        assert_no_piece(repr(Settings(database_url=pg_url(password))), password)


async def test_redis_url_errors_never_quote_the_password() -> None:
    for password in PASSWORDS:
        url = redis_url_with(password)
        try:
            client = redis_client(url)
        except RedisUrlInvalid as exc:
            assert_no_piece(str(exc), password)
            continue
        await client.aclose()
        assert_no_piece(str(RedisUnreachable(url, f"Error connecting with {password}")), password)


def test_multi_host_urls_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    """Masked, refused, expanded for Tortoise and logged: raw and percent-encoded passwords."""
    logger = logging.getLogger("test-secrets-multi-host")
    if not logger.filters:
        logger.addFilter(SecretsFilter())
    for password in PASSWORDS:
        for secret in (password, quote(password, safe="")):
            url = f"postgres://coach:{secret}@h1:5432,h2:5433,h3/coach?target_session_attrs=read-write"
            masked = mask_url(url)
            assert masked == "postgres://coach:***@h1:5432,h2:5433,h3/coach", masked
            try:
                config = tortoise_config(url)
            except CoachDbError as exc:
                assert_no_piece(str(exc) + repr(exc), password)
                continue
            with caplog.at_level(logging.DEBUG, logger=logger.name):
                logger.debug("config: %s", config)
            assert_no_piece(caplog.text, password, secret)


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    for password in PASSWORDS:
        encoded = pg_url(quote(password, safe=""))
        remember_secrets(encoded)
        # A name without digits: an id() in it once matched a piece of "%252F".
        logger = logging.getLogger("test-secrets-table")
        if not logger.filters:
            logger.addFilter(SecretsFilter())
        with caplog.at_level(logging.DEBUG, logger=logger.name):
            # What Tortoise logs at start-up: the config with the URL, and "a third***".
            logger.debug("connections: %s", {"default": encoded})
            logger.debug("password=%s***", password[: len(password) // 3])
            logger.debug("raw %s", password)
        assert_no_piece(caplog.text, password, quote(password, safe=""))


# --- every command, as a subprocess ------------------------------------------------------


def run(
    argv: list[str], env: dict[str, str], stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def base_env(tmp_path: Path, **values: str) -> dict[str, str]:
    # No studio of the developer's answers for the test; REDIS_URL only when given.
    env = subprocess_env(
        values.pop("DATABASE_URL", None),
        home=tmp_path / "home",
        SEED_ADMIN_PASSWORD="secrets-test-pw",
        **values,
    )
    if "REDIS_URL" not in values:
        env.pop("REDIS_URL", None)
    return env


def commands() -> list[tuple[str, list[str], str]]:
    """(name, argv, stdin) of everything that reads DATABASE_URL and can print it."""
    cli = [sys.executable, "-m", "coach_db"]
    port = str(free_port())
    return [
        ("status", [*cli, "status"], ""),
        ("debug status", [*cli, "--debug", "status"], ""),
        ("deploy", [*cli, "deploy"], ""),
        ("seed", [*cli, "seed"], ""),
        ("migrate", [*cli, "migrate", "--name", "x"], ""),
        ("reset", [*cli, "reset", "--yes", "--no-seed"], ""),
        ("createstaff", [*cli, "createstaff", "a@example.com", "--password-stdin"], "pw-long-1\n"),
        ("studio", [*cli, "studio", "--no-migrate", "--port", port], ""),
        ("python -m seed", [sys.executable, "-m", "seed"], ""),
        ("python -m admin", [sys.executable, "-m", "admin", "--port", port], ""),
    ]


def run_all(
    jobs: Iterable[tuple[str, list[str], dict[str, str], str]],
) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    jobs = list(jobs)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: run(job[1], job[2], job[3]), jobs))
    return [(job[0], result) for job, result in zip(jobs, results, strict=True)]


def passwords_for(name: str, index: int) -> list[str]:
    """`status` (plain and --debug) meets every password; each other command two of them, in
    turn, so every password meets half of them. Every command shares database_url() and the
    one-line error path, which test_a_malformed_database_url_... checks with the whole table;
    a subprocess costs a second or more, and the full product took minutes on a loaded machine."""
    if name.endswith("status"):
        return COMMAND_PASSWORDS
    return [COMMAND_PASSWORDS[index % 4], COMMAND_PASSWORDS[(index + 2) % 4]]


@pytest.mark.once  # first CI pass only: every URL names port 1, no test server
def test_no_command_prints_a_database_password(tmp_path: Path) -> None:
    jobs = [
        (
            f"{name} {password!r}",
            argv,
            base_env(tmp_path, DATABASE_URL=pg_url(password), REDIS_URL="redis://127.0.0.1:1/0"),
            stdin,
        )
        for index, (name, argv, stdin) in enumerate(commands())
        for password in passwords_for(name, index)
    ]
    for (name, result), (_, _, env, _) in zip(run_all(jobs), jobs, strict=True):
        password = env["DATABASE_URL"].split("coach:", 1)[1].rsplit("@", 1)[0]
        output = result.stdout + result.stderr
        assert_no_piece(output, password)
        assert result.returncode != 0, (name, output)
        if "debug" not in name:
            assert "Traceback" not in output, (name, output)


def test_the_studio_never_prints_a_redis_password(tmp_path: Path, database_url: str) -> None:
    jobs = [
        (
            name,
            argv,
            base_env(tmp_path, DATABASE_URL=database_url, REDIS_URL=redis_url_with(password)),
            "",
        )
        for index, (name, argv, _) in enumerate(commands())
        if name in {"studio", "python -m admin"}
        for password in COMMAND_PASSWORDS[index % 2 :: 2]
    ]
    for (name, result), (_, _, env, _) in zip(run_all(jobs), jobs, strict=True):
        password = env["REDIS_URL"].split("://:", 1)[1].rsplit("@", 1)[0]
        output = result.stdout + result.stderr
        assert result.returncode == 1, (name, output)
        assert "Redis" in output and "Traceback" not in output, (name, output)
        assert_no_piece(output, password)


def test_an_encoded_password_works_and_never_shows(tmp_path: Path) -> None:
    """The same password percent-encoded is accepted by a server that checks it (scram, not
    the shared server's trust), a wrong one is refused; neither form shows, even at DEBUG."""
    password = "Kq/?#@:%[]+ Zv"
    with ThrowawayPostgres(password=password) as server:
        url = with_password(server.url, password)
        env = base_env(tmp_path, DATABASE_URL=url)
        cli = [sys.executable, "-m", "coach_db"]
        script = (
            "import asyncio, logging, coach_db\n"
            "logging.basicConfig(level=logging.DEBUG)\n"
            "async def main():\n"
            "    async with coach_db.connect():\n"
            "        pass\n"
            "asyncio.run(main())\n"
        )
        deployed = run([*cli, "deploy"], env)
        assert deployed.returncode == 0, deployed.stderr
        # The server checks it: a wrong password is refused (status exits 0 when it connects).
        wrong = run([*cli, "status"], {**env, "DATABASE_URL": with_password(server.url, "Kq")})
        assert wrong.returncode != 0 and "password" in (wrong.stdout + wrong.stderr).lower()
        runs = (deployed, run([*cli, "status"], env), run([sys.executable, "-c", script], env))
        for result in runs:
            output = result.stdout + result.stderr
            assert result.returncode == 0, output
            assert_no_piece(output, password, quote(password, safe=""))


SERVICE_LOGGING = """
import asyncio, logging, logging.config, sys
import coach_db

logging.config.dictConfig({
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(name)s %(levelname)s %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                         "formatter": "plain"}},
    "root": {"level": "DEBUG", "handlers": ["out"]},
})
password, url = sys.argv[1], sys.argv[2]

async def main():
    async with coach_db.connect():  # tortoise.db_client logs its settings at DEBUG
        pass
    logging.getLogger("tortoise.db_client").debug("child logger: %s", password)
    try:
        raise RuntimeError(f"cannot reach {url} with {password}")
    except RuntimeError:
        logging.getLogger("service.jobs").exception("job failed")
    logging.getLogger("service").info("done")

asyncio.run(main())
"""


def test_a_services_own_logging_set_up_never_prints_a_password(
    tmp_path: Path, database_url: str
) -> None:
    """Issue 18: a service's dictConfig (its own handler, root at DEBUG) gets child loggers'
    records and `logger.exception` tracebacks scrubbed too."""
    password = "Zq/#@?%:Wv"
    url = with_password(database_url, password)  # the shared server ignores it (trust)
    env = base_env(tmp_path, DATABASE_URL=url)
    result = run([sys.executable, "-c", SERVICE_LOGGING, password, url], env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for shown in ("tortoise.db_client DEBUG", "child logger: ***", "job failed", "Traceback"):
        assert shown in output, output  # the records were printed, scrubbed
    assert_no_piece(output, password, quote(password, safe=""))


def test_short_passwords_do_not_garble_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A one-letter password elsewhere in the process must not turn every "p" into ***."""
    remember_secrets("postgres://u:p@127.0.0.1:1/d")
    logger = logging.getLogger("test-secrets-short")
    logger.addFilter(SecretsFilter())
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        logger.debug("connected to postgres")
    assert "connected to postgres" in caplog.text
