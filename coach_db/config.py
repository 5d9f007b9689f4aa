"""Settings read from the environment at call time, and the TORTOISE_ORM config Aerich reads."""

from __future__ import annotations

import logging
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from coach_db.errors import DatabaseUrlInvalid, DatabaseUrlMissing
from coach_db.home import running_state

MODELS_MODULE = "coach_db.models"
APP_LABEL = "models"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Characters that URL parsers read as delimiters inside credentials; a space is not a URL
# character at all.
_RESERVED = re.compile(r"[/?#@\[\]\s]")
# A host (or a comma-separated list of hosts, each with its port) up to the path or the query.
_HOST_START = re.compile(r"[\w.\-\[\]%]*(?::\d*)?(?:,[\w.\-\[\]%]*(?::\d*)?)*(?:[/?]|$)")
_ONE_HOST = re.compile(r"(?P<host>\[[0-9A-Fa-f:.%\w]+\]|[\w.\-%]+)(?::(?P<port>\d{1,5}))?")
# libpq's and asyncpg's values of target_session_attrs.
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
_SCHEMES = {"postgres", "postgresql", "asyncpg", "postgresql+asyncpg"}


class Settings(BaseSettings):
    """Everything configurable through the environment (or a .env file)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # repr=False: a logged or printed Settings object never shows the password.
    database_url: str | None = Field(default=None, repr=False)
    # Pool sizes and asyncpg's prepared-statement cache; set DB_STATEMENT_CACHE_SIZE=0 behind
    # PgBouncer in transaction mode. A value in the URL's query string wins over these.
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_statement_cache_size: int = Field(default=100, ge=0)
    # Seconds to wait for a connection before "can't reach the database server".
    db_connect_timeout: int = Field(default=10, ge=1)
    # What the pool undoes when a query gives its connection back. "light": roll back a
    # transaction left open (nothing else to undo: coach_db never leaves session state, as
    # PgBouncer's transaction mode requires too). "full": also asyncpg's RESET ALL, UNLISTEN *,
    # CLOSE ALL and pg_advisory_unlock_all(), one more round trip per query (1.5x slower small
    # queries), for services that SET session settings or take session locks on the pool.
    db_pool_reset: Literal["light", "full"] = "light"
    # Seconds `coach-db deploy` waits for another deploy's migration lock (5 minutes: long
    # enough for a migration that rewrites a big table, short enough to notice one that hangs).
    deploy_lock_timeout: float = Field(default=300, gt=0)
    # Streaming replicas for reads, comma-separated (see replica_urls()). Unset: no replicas.
    database_replica_url: str | None = Field(default=None, repr=False)
    # Seconds a replica may trail the primary and still serve reads; beyond it, and while it
    # does not answer, reads go to the primary (with a warning in the log).
    database_replica_max_lag: float = Field(default=10, gt=0)
    # Seconds between two checks of every replica's state and lag (one query per replica and
    # one on the primary each time).
    database_replica_check_interval: float = Field(default=1, gt=0)
    # The opt-in Redis cache of scenario reads (coach_db.cache): off while the URL is unset.
    # The TTL bounds staleness after writes nobody announced (raw SQL, QuerySet.update()).
    coach_db_cache_url: str | None = Field(default=None, repr=False)
    coach_db_cache_ttl: float = Field(default=60, gt=0)
    coach_db_cache_prefix: str = "coach_db:"
    # The key of the erasure receipts' e-mail hashes (coach_db.privacy.erasure_key): a file
    # holding it (a Docker secret) or the value itself. Kept outside the database, so that
    # reading the database does not confirm a guessed e-mail against a receipt.
    coach_db_erasure_key_file: str | None = None
    coach_db_erasure_key: str | None = Field(default=None, repr=False)


def get_settings() -> Settings:
    """Read the settings now, so a changed environment is always seen."""
    return Settings()


def _credentials(url: str) -> tuple[str, str, str | None, str]:
    """(`scheme://`, user, password or None, the rest after the credentials) of a raw URL.

    Located in the raw string, not by a URL parser: the credentials run up to the LAST `@`, so
    a password pasted without percent-encoding (`ab/cd`, `abc#def`, `p@ss:w0rd`) is still found
    whole. Without an `@` there are no credentials.
    """
    url = url.strip()
    scheme = _SCHEME.match(url)
    prefix = scheme.group(0) if scheme else ""
    body = url[len(prefix) :]
    if "@" not in body:
        return prefix, "", None, body
    # The last `@` followed by something that can be a host; `@` in a query value comes later.
    ats = [i for i, char in enumerate(body) if char == "@"]
    at = next((i for i in reversed(ats) if _HOST_START.match(body, i + 1)), ats[-1])
    userinfo, rest = body[:at], body[at + 1 :]
    user, colon, password = userinfo.partition(":")
    return prefix, user, password if colon else None, rest


def url_secrets(url: str) -> list[str]:
    """The password of `url` as written and percent-decoded (longest first), to scrub from text."""
    _, user, password, _ = _credentials(url)
    found = {password, unquote(password)} if password else set()
    if password is None and _RESERVED.search(user):
        found |= {user, unquote(user)}  # not a user name: an un-encoded secret, hide it
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """`text` with every form of `url`'s password replaced by ***."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def mask_url(url: str) -> str:
    """The URL with its password replaced by *** and its query dropped, safe to log or show.

    Never raises: any string (malformed, or with an un-encoded password) is masked.
    """
    prefix, user, password, rest = _credentials(url)
    if not prefix and ":" in rest and password is None and not user:
        # Not a URL at all (`coach:secret`): keep what precedes the first colon only.
        return rest.split(":", 1)[0] + ":***"
    if password:
        credentials = f"{user}:***@"
    elif password is not None:
        credentials = f"{user}:@"  # an empty password (a local socket): nothing to hide
    elif user:
        credentials = "***@" if _RESERVED.search(user) else f"{user}@"
    else:
        credentials = ""
    where, _, query = rest.partition("?")
    where = where.split("#", 1)[0]
    # Keep a socket directory (it says where the server is); drop pool settings and secrets.
    host = next((v for k, v in parse_qsl(query.split("#", 1)[0]) if k == "host"), None)
    return f"{prefix}{credentials}{where}" + (f"?host={host}" if host else "")


def credentials_problem(url: str) -> str | None:
    """Why the user name or password of `url` cannot be read reliably, or None.

    URL parsers disagree on un-encoded reserved characters (asyncpg splits at the first `@`,
    urllib at the last; `/ ? #` end the host part), so such a URL would reach the wrong host or
    fail with the parser's own message, which quotes the password.
    """
    _, user, password, _ = _credentials(url)
    if _RESERVED.search(user) or (password and _RESERVED.search(password)):
        return (
            "the user name or password contains a character that must be percent-encoded "
            "(/ ? # @ [ ] space as %2F %3F %23 %40 %5B %5D %20, "
            "e.g. with Python's urllib.parse.quote(password, safe=''))"
        )
    return None


def database_url(url: str | None = None, *, variable: str = "DATABASE_URL") -> str:
    """`url` or DATABASE_URL, validated and normalised for Tortoise, with the pool settings.

    `variable` names the setting in error messages (DATABASE_REPLICA_URL for a replica).
    """
    settings = get_settings()
    raw = (url or settings.database_url or "").strip()
    if not raw and (state := running_state()) and state.database_url:
        raw = state.database_url  # the embedded server of a running `coach-db studio`
    if not raw:
        raise DatabaseUrlMissing()
    masked = mask_url(raw)
    if problem := credentials_problem(raw):
        raise DatabaseUrlInvalid(masked, problem, variable)
    # Several hosts (`h1:5432,h2:5432`): each is checked, then the first stands for all of
    # them while the rest is validated, and the list is put back at the end.
    hostlist = _hostlist(raw)
    hosts = _hosts(hostlist, masked, variable) if "," in hostlist else None
    if hosts:
        raw = _with_hostlist(raw, hosts[0])
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        # Never the parser's own message: it quotes pieces of the URL (the password, too).
        reason = (
            "the port must be a number from 0 to 65535"
            if "port" in str(exc).lower()
            else "the host is malformed (an IPv6 address goes in [brackets])"
        )
        raise DatabaseUrlInvalid(masked, reason, variable) from None
    remember_secrets(raw)
    if parts.scheme not in _SCHEMES:
        raise DatabaseUrlInvalid(
            masked, f"unsupported scheme {parts.scheme or '(none)'!r}", variable
        )
    query = dict(parse_qsl(parts.query))
    if not parts.hostname and "host" not in query:
        raise DatabaseUrlInvalid(masked, "no host", variable)
    if not parts.path.strip("/"):
        raise DatabaseUrlInvalid(masked, "no database name after the host", variable)
    query.setdefault("minsize", str(settings.db_pool_min_size))
    query.setdefault("maxsize", str(settings.db_pool_max_size))
    query.setdefault("statement_cache_size", str(settings.db_statement_cache_size))
    query.setdefault("timeout", str(settings.db_connect_timeout))
    target = query.get("target_session_attrs")
    if target is not None and target not in TARGET_SESSION_ATTRS:
        raise DatabaseUrlInvalid(
            masked,
            f"target_session_attrs must be one of {', '.join(TARGET_SESSION_ATTRS)}",
            variable,
        )
    if hosts and target is None and variable == "DATABASE_URL":
        # Several hosts for the primary: only the one that accepts writes will do (libpq's
        # default, "any", would take the first that answers, maybe a standby).
        query["target_session_attrs"] = "read-write"
    if hosts:
        userinfo = parts.netloc.rpartition("@")[0]
        parts = parts._replace(netloc=(f"{userinfo}@" if userinfo else "") + ",".join(hosts))
    # Tortoise and Aerich know postgres:// but not SQLAlchemy's postgresql+asyncpg://.
    return urlunsplit(parts._replace(scheme="postgres", query=urlencode(query)))


def _hostlist(url: str) -> str:
    """The host part of a raw URL: one host, or several separated by commas."""
    rest = _credentials(url)[3]
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _with_hostlist(url: str, hostlist: str) -> str:
    """`url` (stripped) with `hostlist` in place of its host part."""
    url = url.strip()
    rest = _credentials(url)[3]
    return url[: len(url) - len(rest)] + hostlist + rest[len(_hostlist(url)) :]


def _hosts(hostlist: str, masked: str, variable: str) -> list[str]:
    """Each `host:port` of a multi-host URL (port 5432 when not given), or DatabaseUrlInvalid."""
    found = []
    for item in hostlist.split(","):
        match = _ONE_HOST.fullmatch(item.strip())
        if not match or not 0 < int(match["port"] or 5432) <= 65535:
            raise DatabaseUrlInvalid(
                masked,
                "each host of a multi-host URL must be host or host:port, port from 1 to 65535 "
                "(h1:5432,h2:5432,h3:5432)",
                variable,
            )
        found.append(f"{match['host']}:{match['port'] or 5432}")
    return found


def url_hosts(url: str) -> list[tuple[str, int]]:
    """(host, port) of each host of a URL from database_url(), in order."""
    hosts = []
    for item in _hostlist(url).split(","):
        host, _, port = item.rpartition(":") if re.search(r":\d+$", item) else (item, "", "")
        hosts.append((host.strip("[]"), int(port or 5432)))
    return hosts


# A host that did not answer within its connect timeout is tried after the others for this long
# (seconds): while a node is cut off, each new connection does not first wait it out again.
UNANSWERED_HOST_LAST_FOR = 30.0


@dataclass(frozen=True)
class MultiHostConnect:
    """asyncpg.connect for a pool over several hosts (asyncpg.create_pool's `connect=` hook).

    Tortoise passes a single host and port to the pool. The hosts are tried in order, keeping
    the first that matches target_session_attrs, each within its own connect `timeout`, as
    libpq's connect_timeout does: asyncpg's own host list shares one timeout among all hosts,
    so a host that never answers (cut off by the network: no refusal, no reply) used it all
    and the hosts after it were never tried. A host that timed out goes last for
    UNANSWERED_HOST_LAST_FOR seconds. The pool calls this for every new connection, so after
    a failover the replacement of a dropped connection goes to whichever host is the primary
    now.
    """

    hosts: tuple[str, ...]
    ports: tuple[int, ...]
    # Host index -> time.monotonic() of its last timeout.
    unanswered: dict[int, float] = field(default_factory=dict, compare=False)

    async def __call__(self, *args: Any, **kwargs: Any) -> asyncpg.Connection:
        timeout = kwargs.pop("timeout", 60)
        target = kwargs.pop("target_session_attrs", None)
        recently = time.monotonic() - UNANSWERED_HOST_LAST_FOR
        order = sorted(range(len(self.hosts)), key=lambda i: self.unanswered.get(i, 0) > recently)
        # prefer-standby: a standby if any answers, else any host that answered.
        passes = ["standby", "any"] if target == "prefer-standby" else [target]
        answered: list[int] = []
        last_error: BaseException | None = None
        for attrs in passes:
            for i in order if attrs == passes[0] else answered:
                options = {**kwargs, "host": self.hosts[i], "port": self.ports[i]}
                if attrs is not None:
                    options["target_session_attrs"] = attrs
                try:
                    connection: asyncpg.Connection = await asyncpg.connect(
                        *args, timeout=timeout, **options
                    )
                except TimeoutError as exc:
                    self.unanswered[i] = time.monotonic()
                    last_error = exc
                except asyncpg.exceptions.TargetServerAttributeNotMatched as exc:
                    answered.append(i)
                    last_error = exc
                except (OSError, asyncpg.CannotConnectNowError) as exc:
                    # Refused, unknown, or starting up / shutting down (a failover under way).
                    last_error = exc
                else:
                    self.unanswered.pop(i, None)
                    return connection
        if answered:  # the most telling reason: hosts answered, none of the kind asked for
            raise asyncpg.exceptions.TargetServerAttributeNotMatched(
                f"none of the hosts match the target attribute requirement {target!r}"
            )
        assert last_error is not None
        raise last_error


def tortoise_connection(url: str) -> str | dict[str, Any]:
    """A connection of Tortoise's config for a URL from database_url(): the URL itself, or,
    for several hosts, Tortoise's expansion of it with MultiHostConnect (Tortoise's own URL
    parser reads one host only)."""
    from tortoise.backends.base.config_generator import expand_db_url

    hosts = url_hosts(url)
    if len(hosts) == 1:
        return url
    first = f"{hosts[0][0]}:{hosts[0][1]}" if ":" not in hosts[0][0] else f"[{hosts[0][0]}]"
    single = _with_hostlist(url, first)
    connection: dict[str, Any] = expand_db_url(single)
    connection["credentials"]["connect"] = MultiHostConnect(
        tuple(h for h, _ in hosts), tuple(p for _, p in hosts)
    )
    return connection


# A comma followed by a scheme starts the next replica URL; other commas (a multi-host URL,
# an encoded password) stay inside their URL.
_NEXT_URL = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def replica_urls(urls: str | None = None) -> list[str]:
    """The replicas of `urls` or DATABASE_REPLICA_URL (comma-separated), validated and
    normalised like DATABASE_URL; an empty list when unset."""
    raw = (urls if urls is not None else get_settings().database_replica_url) or ""
    found = [u.strip() for u in _NEXT_URL.split(raw.strip()) if u.strip()]
    return [database_url(u, variable="DATABASE_REPLICA_URL") for u in found]


# --- keeping passwords out of logs ------------------------------------------------------------

_SEEN_SECRETS: set[str] = set()
MIN_SCRUBBED = 4
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*")


def remember_secrets(url: str) -> None:
    """Note `url`'s password, so that every log record is scrubbed of it (install_log_scrubbing).

    Passwords shorter than MIN_SCRUBBED are not noted: replacing every "x" or "pw" in every log
    line would garble the logs, and such a password protects nothing anyway.
    """
    _SEEN_SECRETS.update(s for s in url_secrets(url) if len(s) >= MIN_SCRUBBED)


def remember_secret(secret: str) -> None:
    """Note a secret that is not in a URL (the erasure key), so that logs never show it."""
    if len(secret) >= MIN_SCRUBBED:
        _SEEN_SECRETS.add(secret)


def scrub(text: str) -> str:
    """`text` with every URL's password, and every password seen so far, replaced by ***."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    for secret in sorted(_SEEN_SECRETS, key=len, reverse=True):
        # Tortoise's own masking keeps the first third of a password: take that out too.
        if len(secret) // 3 >= 2:  # (one character is no clue)
            text = text.replace(f"{secret[: len(secret) // 3]}***", "***")
        text = text.replace(secret, "***")
    return text


def scrub_record(record: logging.LogRecord) -> None:
    """Take passwords out of a record's message, traceback and stack, in place.

    A traceback that held one is kept as scrubbed text only (`exc_text`, which formatters print
    as it is) and its `exc_info` dropped, so no formatter can print the original.
    """
    try:
        message = record.getMessage()
    except Exception:  # bad arguments: logging reports them when the record is emitted
        return
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = scrub(text)
        if clean != text:
            record.exc_info, record.exc_text = None, clean
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


def install_log_scrubbing() -> None:
    """Scrub every log record of the process where it is made: a record factory
    (`logging.setLogRecordFactory`, the stdlib's hook for every record) wrapping the current
    one. Unlike a filter, which acts on its own logger's records only (not a child's
    propagating to a service's handlers), it sees every record of every logger, whatever
    handlers and formatters a service configures. Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "coach_db_scrubs", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        scrub_record(record)
        return record

    factory.coach_db_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class SecretsFilter(logging.Filter):
    """A logging filter that scrubs database passwords from every record it sees.

    Tortoise logs its connection settings at DEBUG: the URL with a percent-encoded password in
    full, a plain one with its first third showing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def tortoise_config(url: str | None = None) -> dict[str, Any]:
    """The Tortoise/Aerich configuration for one database URL (default: DATABASE_URL)."""
    return {
        "connections": {"default": tortoise_connection(database_url(url))},
        "apps": {
            APP_LABEL: {
                "models": [MODELS_MODULE, "aerich.models"],
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    # PEP 562: TORTOISE_ORM is built on access, so importing this module never needs a URL.
    if name == "TORTOISE_ORM":
        return tortoise_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
