"""`seed()`: the development data of Conversation Coach, loaded idempotently."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tortoise.transactions import in_transaction

from coach_db import Scenario, StaffRole, User
from coach_db.apps.seed import data
from coach_db.passwords import hash_password, verify_password

DEFAULT_DEMO = 20
DEFAULT_RANDOM_SEED = 0
MIN_PASSWORD_LENGTH = 8  # the same minimum as coach_db.types.UserCreate


class SeedError(Exception):
    """A problem with the seed's own input, explained in one line."""


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    """What the seed did to one row: `key` is its e-mail or slug, `fields` what it rewrote."""

    kind: str
    key: str
    action: Action
    fields: tuple[str, ...] = ()


@dataclass
class SeedResult:
    """Everything a run did, for the summary table and for tests."""

    changes: list[Change] = field(default_factory=list)
    # Bulk rows (demo sessions and messages) are counted, not listed one by one.
    bulk: dict[str, Counter[Action]] = field(default_factory=dict)
    # Set only in the run that created the admin's password: the one time it can be shown.
    generated_admin_password: str | None = None
    demo_sessions: int = 0
    demo_messages: int = 0
    demo_seconds: float = 0.0
    seconds: float = 0.0

    def counts(self) -> dict[str, Counter[Action]]:
        """Actions per row kind, in the order the kinds were first touched."""
        counts: dict[str, Counter[Action]] = {}
        for change in self.changes:
            counts.setdefault(change.kind, Counter())[change.action] += 1
        for kind, counter in self.bulk.items():
            counts.setdefault(kind, Counter()).update(counter)
        return counts


class SeedSettings(BaseSettings):
    """SEED_ADMIN_PASSWORD, from the environment or .env like DATABASE_URL."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    seed_admin_password: SecretStr | None = None


def admin_password_from_env() -> str | None:
    """SEED_ADMIN_PASSWORD, or None when unset or blank; too short a password is refused."""
    secret = SeedSettings().seed_admin_password
    password = secret.get_secret_value().strip() if secret else ""
    if not password:
        return None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SeedError(
            f"SEED_ADMIN_PASSWORD is too short: use at least {MIN_PASSWORD_LENGTH} characters."
        )
    return password


# pg_advisory_xact_lock key held while seeding ("coachsd").
SEED_LOCK_KEY = 0x636F6163_68736400


async def seed(
    *,
    demo: int = 0,
    random_seed: int = DEFAULT_RANDOM_SEED,
    admin_password: str | None = None,
    progress: bool = False,
    today: date | None = None,
) -> SeedResult:
    """Create or update the base rows, and with `demo` > 0 (re)generate the demo conversations.

    Needs an initialised connection (`async with coach_db.connect():`). Users are matched by
    e-mail (case-insensitively) and scenarios by slug; a row whose values already match
    `coach_db/apps/seed/data.py` is not written at all, so a second run changes nothing, not even
    `updated_at`. The seed owns the fields it sets on its own rows (a scenario prompt edited in
    the studio goes back to `data.py`'s text); it never touches or deletes other rows.

    The admin's password comes from `admin_password`, else SEED_ADMIN_PASSWORD; when neither
    is given, an existing password is kept and a missing one is generated and returned once in
    `generated_admin_password`. Everything runs in one transaction: a failed run changes
    nothing. See `seed.demo.load_demo` for what `demo` does; the demo's conversations end at
    the time of the run, or on `today` (18:00 UTC) when given.
    """
    if demo < 0:
        raise SeedError(f"--demo must be 0 or more, not {demo}.")
    if admin_password is None:
        admin_password = admin_password_from_env()
    started = time.perf_counter()
    result = SeedResult()
    async with in_transaction("default") as conn:  # named: replicas are connections too
        # Two seeds at once (two containers, two terminals) take turns instead of both
        # inserting the same e-mail; the lock ends with the transaction.
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [SEED_LOCK_KEY])
        result.changes.append(await _upsert_test_user())
        admin, result.generated_admin_password = await _upsert_admin(admin_password)
        result.changes.append(admin)
        for scenario in data.SCENARIOS:
            result.changes.append(await _upsert_scenario(scenario))
        if demo:
            from coach_db.apps.seed.demo import (
                load_demo,  # kept apart: only --demo needs the generator
            )

            # The demo COPYs ended sessions with their past messages: an explicit backfill, the
            # only way into a session that is not active (migration 3_…_invariants).
            await conn.execute_query("SET LOCAL coach_db.backfill = 'on'")

            await load_demo(demo, random_seed, result, progress=progress, today=today)
    result.seconds = time.perf_counter() - started
    return result


async def upsert_user(
    kind: str, values: data.UserData, extra: dict[str, Any] | None = None
) -> tuple[User, Change]:
    """Create the user with `values` (+ `extra`), or rewrite the fields that differ."""
    wanted: dict[str, Any] = {"username": values["username"], **(extra or {})}
    email = values["email"].lower()
    user = await User.filter(email__iexact=email).first()
    if user is None:
        user = await User.create(email=email, **wanted)
        return user, Change(kind, email, Action.CREATED)
    changed = await _apply(user, wanted)
    return user, Change(kind, email, Action.UPDATED if changed else Action.UNCHANGED, changed)


async def _upsert_test_user() -> Change:
    user, change = await upsert_user("user", data.TEST_USER, {"is_staff": False})
    # Its password is public and documented, so the seed puts it back when someone changed it.
    return await _ensure_password(user, change, data.TEST_USER_PASSWORD)


async def _upsert_admin(password: str | None) -> tuple[Change, str | None]:
    user, change = await upsert_user(
        "user", data.ADMIN_USER, {"is_staff": True, "role": StaffRole.ADMIN}
    )
    generated = None
    if password is None and user.password_hash is None:
        # No fixed default in the repository: a fresh secret, shown once by the caller.
        password = generated = secrets.token_urlsafe(16)
    if password is not None:
        change = await _ensure_password(user, change, password)
    return change, generated


async def _ensure_password(user: User, change: Change, password: str) -> Change:
    """Hash `password` into the row unless it already verifies.

    Hashes are salted, so rehashing on every run would rewrite the row each time.
    """
    if verify_password(password, user.password_hash):
        return change
    rewritten = await _apply(user, {"password_hash": hash_password(password)})
    if change.action is Action.CREATED:
        return change
    return Change(change.kind, change.key, Action.UPDATED, (*change.fields, *rewritten))


async def _upsert_scenario(values: data.ScenarioData) -> Change:
    wanted: dict[str, Any] = {k: v for k, v in values.items() if k != "slug"}
    scenario = await Scenario.get_or_none(slug=values["slug"])
    if scenario is None:
        await Scenario.create(slug=values["slug"], **wanted)
        return Change("scenario", values["slug"], Action.CREATED)
    changed = await _apply(scenario, wanted)
    action = Action.UPDATED if changed else Action.UNCHANGED
    return Change("scenario", values["slug"], action, changed)


async def _apply(row: User | Scenario, wanted: dict[str, Any]) -> tuple[str, ...]:
    """Set and save only the fields that differ; return their names (empty: nothing written)."""
    changed = tuple(name for name, value in wanted.items() if getattr(row, name) != value)
    if changed:
        for name in changed:
            setattr(row, name, wanted[name])
        # updated_at is auto_now: listing it makes Tortoise stamp it in the same UPDATE.
        await row.save(update_fields=[*changed, "updated_at"])
    return changed


__all__ = [
    "DEFAULT_DEMO",
    "DEFAULT_RANDOM_SEED",
    "Action",
    "Change",
    "SeedError",
    "SeedResult",
    "admin_password_from_env",
    "seed",
    "upsert_user",
]
