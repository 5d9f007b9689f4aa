"""`--demo N`: realistic practice conversations, reproducible per random seed, loaded by COPY."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, TypeVar, cast

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from tortoise import connections

from coach_db import MessageRole, Scenario, SessionStatus
from coach_db.apps.seed import Action, SeedResult, data, upsert_user

# The demo's conversations end at its "now": the moment the seed runs, so a fresh studio's
# 30-day chart is alive; `--today DATE` (SEED_TODAY) pins it to DATE 18:00 UTC, and then the
# same --random-seed gives identical rows on any day. The content never depends on the date.
PINNED_HOUR = 18
HISTORY_DAYS = 60
# Sessions per COPY round (~36,000 messages, ~20 MB of rows): large enough for COPY's
# throughput and for few runs of the counting trigger, small enough for a smooth progress bar
# and for memory that does not grow with N. Two rounds are in memory at a time (one generated
# while the other is written).
CHUNK = 1000
STATUS_WEIGHTS = {
    SessionStatus.COMPLETED: 65,
    SessionStatus.ABANDONED: 20,
    SessionStatus.ACTIVE: 15,
}
SESSION_COLUMNS = (
    "id",
    "user_id",
    "scenario_id",
    "status",
    "started_at",
    "ended_at",
    "total_messages",
    "duration_seconds",
)
MESSAGE_COLUMNS = ("session_id", "role", "content", "timestamp", "metadata")
_SCENARIOS = {scenario["slug"]: scenario for scenario in data.SCENARIOS}

T = TypeVar("T")
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class DemoMessage:
    role: MessageRole
    content: str
    timestamp: datetime
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DemoSession:
    """One generated conversation; `user` indexes data.DEMO_USER_NAMES."""

    user: int
    scenario: str
    status: SessionStatus
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    messages: tuple[DemoMessage, ...]


def demo_email(user: int) -> str:
    """The e-mail of demo user `user` (0-based): demo1@example.com, demo2@example.com, ..."""
    return f"demo{user + 1}@example.com"


def demo_users() -> list[data.UserData]:
    return [
        {"email": demo_email(i), "username": name} for i, name in enumerate(data.DEMO_USER_NAMES)
    ]


def demo_now(today: date | None = None) -> datetime:
    """The demo's "now": `today` at 18:00 UTC when pinned, else this second."""
    if today is None:
        return datetime.now(UTC).replace(microsecond=0)
    return datetime.combine(today, clock_time(PINNED_HOUR), tzinfo=UTC)


def generate(n: int, random_seed: int, now: datetime) -> Iterator[DemoSession]:
    """N conversations in start order, the last ones just before `now`; a pure function of
    (n, random_seed, now): no database or clock. Only the times depend on `now`."""
    rng = random.Random(random_seed)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    plan: list[tuple[datetime, SessionStatus, str, int]] = []
    for _ in range(n):
        status = rng.choices(statuses, weights)[0]
        # Sessions still in progress started in the last hour; the rest spread over two months.
        if status is SessionStatus.ACTIVE:
            age = rng.randint(60, 3600)
        else:
            age = rng.randint(2 * 3600, HISTORY_DAYS * 86400)
        scenario = rng.choice(data.SCENARIOS)["slug"]
        user = rng.randrange(len(data.DEMO_USER_NAMES))
        plan.append((now - timedelta(seconds=age), status, scenario, user))
    # Ids then follow time, as they do in production (sort is stable: ties keep their order).
    plan.sort(key=lambda item: item[0])
    for started_at, status, scenario, user in plan:
        yield _conversation(rng, started_at, status, scenario, user)


def _conversation(
    rng: random.Random, started_at: datetime, status: SessionStatus, slug: str, user: int
) -> DemoSession:
    """Partner opens; user and partner alternate; the coach comments every few user turns."""
    bank = data.PHRASES[slug]
    talk = _Transcript(rng, _SCENARIOS[slug], started_at)
    # How often this user picks a skilled line: sessions range from rough to excellent.
    skill = rng.uniform(0.2, 0.95)
    if status is SessionStatus.COMPLETED:
        turns = rng.randint(6, 30)
    elif status is SessionStatus.ABANDONED:
        turns = rng.randint(0, 6)  # 0: opened the scenario, read the first line, left
    else:
        turns = rng.randint(1, 12)
    coach_every = rng.randint(3, 5)
    goodwill = 0  # the partner softens after a run of skilled turns and flares up after a slip
    shown: list[tuple[str, str]] = []  # (skill, line) of every skilled user turn

    talk.partner(talk.pick(bank["partner_opening"]), think=(2, 8))
    for turn in range(1, turns + 1):
        skilled = rng.random() < skill
        tag, line = talk.pick(bank["user_skilled"] if skilled else bank["user_slips"])
        talk.user(line)
        if skilled:
            shown.append((tag, line))
            goodwill += 1
        else:
            goodwill = max(0, goodwill - 2)
        last = turn == turns
        # A slip always draws pushback; skilled turns only land once they have built up.
        if not skilled or goodwill < 2:
            reply = bank["partner_pushback"]
        elif last and status is SessionStatus.COMPLETED:
            reply = bank["partner_closing"]
        else:
            reply = bank["partner_softening"]
        talk.partner(talk.pick(reply))
        if turn % coach_every == 0 and not last:
            feedback = bank["coach_praise"] if skilled else bank["coach_nudge"]
            talk.coach(feedback[tag].format(quote=_quote(line)))
    if status is SessionStatus.COMPLETED:
        talk.coach(_summary(rng, bank, turns, shown))

    if status is SessionStatus.ACTIVE:
        ended_at, duration = None, None
    else:
        # Completed: closed right after the summary; abandoned: closed by the idle timeout.
        idle = rng.uniform(5, 60) if status is SessionStatus.COMPLETED else rng.uniform(120, 900)
        last_at = talk.messages[-1].timestamp
        duration = math.ceil((last_at - started_at).total_seconds() + idle)
        # Whole seconds, so that duration_seconds == ended_at - started_at holds exactly.
        ended_at = started_at + timedelta(seconds=duration)
    return DemoSession(user, slug, status, started_at, ended_at, duration, tuple(talk.messages))


class _Transcript:
    """Builds a session's messages with increasing timestamps and plausible model metadata."""

    def __init__(self, rng: random.Random, scenario: data.ScenarioData, at: datetime) -> None:
        self.rng = rng
        self.scenario = scenario
        self.at = at
        self.messages: list[DemoMessage] = []
        self.history_tokens = 0
        self.prompt_tokens = {
            MessageRole.PARTNER: _tokens(scenario["partner_system_prompt"]),
            MessageRole.COACH: _tokens(scenario["coach_system_prompt"]),
        }
        # Per phrase bank (keyed by the constant tuple's id): the lines left, the last one dealt.
        self.decks: dict[int, list[Any]] = {}
        self.last: dict[int, Any] = {}

    def pick(self, lines: Sequence[T]) -> T:
        """The next line of a shuffled deck per bank: no repeats until the bank is used up."""
        key = id(lines)
        deck = self.decks.get(key)
        if not deck:
            deck = self.decks[key] = list(lines)
            self.rng.shuffle(deck)
            # A new round never starts with the line that ended the previous one.
            if len(deck) > 1 and key in self.last and deck[-1] == self.last[key]:
                deck[0], deck[-1] = deck[-1], deck[0]
        line: T = deck.pop()
        self.last[key] = line
        return line

    def user(self, content: str) -> None:
        # Reading the reply, thinking, then typing at about five characters a second.
        seconds = self.rng.uniform(4, 25) + len(content) / self.rng.uniform(3.5, 6.5)
        self._add(MessageRole.USER, content, seconds * 1000, {}, _tokens(content))

    def partner(self, content: str, think: tuple[float, float] | None = None) -> None:
        self._model_turn(MessageRole.PARTNER, content, self.scenario["partner_model"], think)

    def coach(self, content: str) -> None:
        self._model_turn(MessageRole.COACH, content, self.scenario["coach_model"], None)

    def _model_turn(
        self,
        role: MessageRole,
        content: str,
        model: str,
        think: tuple[float, float] | None,
    ) -> None:
        tokens_in = self.prompt_tokens[role] + self.history_tokens
        tokens_out = _tokens(content)
        # Time to first token plus streaming; the coach runs on the faster model.
        per_token = (
            self.rng.uniform(18, 32) if role is MessageRole.PARTNER else self.rng.uniform(8, 14)
        )
        latency_ms = round(self.rng.uniform(350, 900) + tokens_out * per_token)
        wait_ms = latency_ms if think is None else self.rng.uniform(*think) * 1000
        metadata = {
            "model": model,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "latency_ms": latency_ms,
        }
        self._add(role, content, wait_ms, metadata, tokens_out)

    def _add(
        self,
        role: MessageRole,
        content: str,
        after_ms: float,
        metadata: dict[str, Any],
        tokens: int,
    ) -> None:
        # At least a millisecond apart: timestamps strictly increase within a session.
        self.at += timedelta(milliseconds=max(1, round(after_ms)))
        self.messages.append(DemoMessage(role, content, self.at, metadata))
        self.history_tokens += tokens + 4  # + the per-message framing


def _tokens(text: str) -> int:
    """Roughly four characters a token, as for English with Anthropic's tokenizer."""
    return max(1, round(len(text) / 4))


def _quote(line: str, words: int = 9) -> str:
    """The first few words of a line, for the coach to quote back."""
    parts = line.split()
    if len(parts) <= words:
        return line
    return " ".join(parts[:words]).rstrip(".,;:!?") + "…"


def _summary(
    rng: random.Random, bank: data.PhraseBank, turns: int, shown: list[tuple[str, str]]
) -> str:
    """The end-of-session feedback: scores from what the user showed, drill for the weakest."""
    share = len(shown) / turns
    used = {skill for skill, _ in shown}
    scores = {
        skill: min(
            4, max(1, round(1 + 2.5 * share + 0.8 * (skill in used) + rng.uniform(-0.5, 0.5)))
        )
        for skill in bank["skills"]
    }
    if shown:
        skill, line = rng.choice(shown)
        best = f'"{_quote(line, 14)}": {bank["coach_why"][skill]}'
    else:
        best = "staying in the conversation to the end, which is where every other skill starts."
    weakest = min(bank["skills"], key=lambda skill: scores[skill])
    return (
        "**Scores:** " + ", ".join(f"{skill} {score}/4" for skill, score in scores.items()) + ".\n"
        f"**Your strongest moment:** {best}\n"
        f"**One thing to practise:** {weakest}: {bank['coach_practise'][weakest]}"
    )


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def load_demo(
    n: int, random_seed: int, result: SeedResult, *, progress: bool, today: date | None = None
) -> None:
    """Replace the demo users' conversations with `n` generated ones.

    Re-running replaces rather than adds: every session of demo1@example.com ... is deleted
    (their messages with them) before the new ones are written, so `--demo 20` run twice leaves
    20 conversations, and the same 20 for the same random seed. That is what a developer
    re-running the seed expects (a known, reproducible data set, not one that grows on every
    run), and it deletes nothing anyone typed: demo users have no password, so only the seed
    writes their sessions. Users, scenarios and every other session are left alone.

    Call inside a transaction (seed() does): the COPY rounds then commit or fail together.
    """
    started = time.perf_counter()
    user_ids: list[int] = []
    for values in demo_users():
        user, change = await upsert_user("demo user", values)
        result.changes.append(change)
        user_ids.append(user.id)
    scenario_ids = {
        scenario.slug: scenario.id for scenario in await Scenario.filter(slug__in=list(_SCENARIOS))
    }

    sessions = Counter[Action]()
    messages = Counter[Action]()
    async with connections.get("default").acquire_connection() as raw:
        conn = cast(asyncpg.Connection, raw)  # the transaction's own asyncpg connection
        sessions[Action.DELETED], messages[Action.DELETED] = await delete_sessions(conn, user_ids)
        ids = iter(await reserve_session_ids(conn, n))
        rounds = _chunks(generate(n, random_seed, demo_now(today)), CHUNK)

        def next_rows() -> tuple[list[Row], list[Row]] | None:
            sessions = next(rounds, None)
            return None if sessions is None else to_rows(sessions, ids, user_ids, scenario_ids)

        with _progress_bar(progress) as bar:
            task = bar.add_task("Demo conversations", total=n)
            # Generating rows is Python (one core) and COPY is the server's work (another
            # core): build the next round in a thread while this one is written. The thread
            # only ever runs next_rows() to its end, so a failure or Ctrl-C never leaves it
            # behind for long.
            rows = await asyncio.to_thread(next_rows)
            while rows is not None:
                session_rows, message_rows = rows
                copying = asyncio.ensure_future(copy_rows(conn, session_rows, message_rows))
                try:
                    rows = await asyncio.to_thread(next_rows)
                except BaseException:
                    await _abandon(copying)
                    raise
                await copying
                sessions[Action.CREATED] += len(session_rows)
                messages[Action.CREATED] += len(message_rows)
                bar.advance(task, len(session_rows))

    result.bulk["demo session"] = sessions
    result.bulk["demo message"] = messages
    result.demo_sessions = sessions[Action.CREATED]
    result.demo_messages = messages[Action.CREATED]
    result.demo_seconds = time.perf_counter() - started


async def delete_sessions(conn: asyncpg.Connection, user_ids: list[int]) -> tuple[int, int]:
    """Delete the sessions of `user_ids` and their messages; return (sessions, messages)."""
    # Messages first, in one join: faster than letting the cascade delete them row by row.
    status = await conn.execute(
        'DELETE FROM "message" m USING "conversation_session" s '
        "WHERE m.session_id = s.id AND s.user_id = ANY($1::int[])",
        user_ids,
    )
    messages = int(status.split()[-1])
    status = await conn.execute(
        'DELETE FROM "conversation_session" WHERE user_id = ANY($1::int[])', user_ids
    )
    return int(status.split()[-1]), messages


async def reserve_session_ids(conn: asyncpg.Connection, n: int) -> list[int]:
    """N ids from the table's own sequence, so rows the app writes later never clash."""
    ids: list[int] = await conn.fetchval(
        "SELECT array_agg(nextval(pg_get_serial_sequence('conversation_session', 'id')))"
        " FROM generate_series(1, $1)",
        n,
    )
    return ids


def to_rows(
    sessions: Iterable[DemoSession],
    ids: Iterator[int],
    user_ids: list[int],
    scenario_ids: dict[str, int],
) -> tuple[list[Row], list[Row]]:
    """COPY records (SESSION_COLUMNS, MESSAGE_COLUMNS) for `sessions`, with ids from `ids`."""
    session_rows: list[Row] = []
    message_rows: list[Row] = []
    for session in sessions:
        session_id = next(ids)
        session_rows.append(
            (
                session_id,
                user_ids[session.user],
                scenario_ids[session.scenario],
                session.status.value,
                session.started_at,
                session.ended_at,
                len(session.messages),  # total_messages: exact by construction
                session.duration_seconds,
            )
        )
        message_rows.extend(
            (
                session_id,
                message.role.value,
                message.content,
                message.timestamp,
                json.dumps(message.metadata),  # asyncpg takes jsonb as text
            )
            for message in session.messages
        )
    return session_rows, message_rows


async def copy_rows(
    conn: asyncpg.Connection, session_rows: list[Row], message_rows: list[Row]
) -> None:
    await conn.copy_records_to_table(
        "conversation_session", records=session_rows, columns=SESSION_COLUMNS
    )
    await conn.copy_records_to_table("message", records=message_rows, columns=MESSAGE_COLUMNS)


async def _abandon(task: asyncio.Future[None]) -> None:
    """Cancel `task` and wait until it has stopped, without raising what it raised."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved: the error that is being raised matters more


def _progress_bar(enabled: bool) -> Progress:
    """A bar on stderr, so stdout stays the summary; off when asked or when stderr is no TTY."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("· about"),
        TimeRemainingColumn(),
        TextColumn("left"),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
