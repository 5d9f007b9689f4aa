"""The shared hasher: argon2id; verifies the Node app's bcrypt hashes and upgrades them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import bcrypt
import pytest
from pwdlib import PasswordHash

from coach_db import User, passwords
from coach_db.passwords import (
    authenticate,
    hash_password,
    verification_count,
    verify_and_update,
    verify_password,
)
from tests.factories import cheap_argon2, make_user
from tests.node import node, prisma_packages
from tests.studio import sign_in

PASSWORD = "password123"
# 100 bytes in UTF-8: bcryptjs hashed only the first 72 of them, without a word.
LONG = "é" * 50

# The Prisma package's Node app: bcryptjs at cost 10, each prefix it (or PHP, for $2y$) writes.
BCRYPTJS = """
import bcrypt from "bcryptjs";
const [password, long] = JSON.parse(process.argv[1]);
const salt = (prefix) => bcrypt.genSaltSync(10).replace("$2b$", prefix);
const out = {};
for (const prefix of ["$2a$", "$2b$", "$2y$"]) {
  out[prefix] = bcrypt.hashSync(password, salt(prefix));
}
out.long = bcrypt.hashSync(long, 10);
out.truncates = bcrypt.truncates(long);
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def bcryptjs_hashes() -> dict[str, Any]:
    """Hashes made now by the pinned bcryptjs npm package (tests/prisma/package-lock.json)."""
    cwd = prisma_packages()
    args = ["--input-type=module", "-e", BCRYPTJS, json.dumps([PASSWORD, LONG])]
    result = node(args, cwd)
    assert result.returncode == 0, result.stderr
    hashes: dict[str, Any] = json.loads(result.stdout)
    return hashes


def python_bcrypt(password: str, prefix: str) -> str:
    salt = bcrypt.gensalt(10, b"2b")
    return bcrypt.hashpw(password.encode(), prefix.encode() + salt[4:]).decode()


# First CI pass only: hashing, no test server (the async tests below sign in through the database).
hashing_only = pytest.mark.once


@hashing_only
def test_hash_is_argon2id_and_salted() -> None:
    first, second = hash_password("password123"), hash_password("password123")
    assert first.startswith("$argon2id$")
    assert first != second


@hashing_only
def test_verify_accepts_the_right_password_only() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("Correct horse", stored)


@pytest.mark.parametrize(
    "stored", [None, "", "not-a-hash", "$2b$12$bcryptlooking", "$2q$10$" + "a" * 53]
)
@hashing_only
def test_verify_fails_closed_on_missing_or_foreign_hashes(stored: str | None) -> None:
    before = verification_count()
    assert verify_and_update("anything", stored) == (False, None)
    assert verification_count() == before + 1  # costs what a wrong password costs


@hashing_only
def test_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@hashing_only
def test_long_passwords_are_not_truncated() -> None:
    long = "x" * 200
    stored = hash_password(long)
    assert verify_password(long, stored)
    assert not verify_password(long[:72], stored)


@hashing_only
@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcryptjs_hashes_verify_and_come_back_as_argon2id(
    bcryptjs_hashes: dict[str, Any], prefix: str
) -> None:
    stored = bcryptjs_hashes[prefix]
    assert stored.startswith(prefix + "10$")
    matches, upgraded = verify_and_update(PASSWORD, stored)
    assert matches and upgraded is not None and upgraded.startswith("$argon2id$")
    assert verify_password(PASSWORD, upgraded)
    assert verify_and_update("password124", stored) == (False, None)
    assert verify_and_update("", stored) == (False, None)


@hashing_only
@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_python_bcrypt_hashes_verify_and_wrong_passwords_do_not(prefix: str) -> None:
    stored = python_bcrypt(PASSWORD, prefix)
    assert stored.startswith(prefix + "10$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD.upper(), stored)


@hashing_only
def test_argon2id_hash_with_todays_parameters_is_not_rewritten() -> None:
    assert verify_and_update(PASSWORD, hash_password(PASSWORD)) == (True, None)


@hashing_only
def test_bcrypt_passwords_over_72_bytes_verify_as_bcryptjs_hashed_them(
    bcryptjs_hashes: dict[str, Any],
) -> None:
    """bcryptjs used the first 72 bytes; so does the check, until the argon2id upgrade,
    after which the whole password counts (and the 72-byte prefix alone no longer does)."""
    assert bcryptjs_hashes["truncates"] is True
    stored = bcryptjs_hashes["long"]
    assert verify_password(LONG, stored)
    prefix = LONG.encode()[:72].decode()
    assert verify_password(prefix, stored)  # what bcryptjs accepted too
    assert not verify_password(LONG[:35], stored)  # 70 bytes: refused
    matches, upgraded = verify_and_update(LONG, stored)
    assert matches and upgraded is not None
    assert verify_password(LONG, upgraded) and not verify_password(prefix, upgraded)


@hashing_only
def test_every_kind_of_refusal_costs_the_same(bcryptjs_hashes: dict[str, Any]) -> None:
    """No timing oracle: a wrong password for a not yet upgraded bcrypt account costs what an
    unknown e-mail or a wrong argon2id password costs (CPU time: the machine is shared)."""
    cases = {
        "no hash": None,
        "argon2id": hash_password(PASSWORD),
        "bcrypt": bcryptjs_hashes["$2b$"],
        "corrupt": "$2b$10$" + "." * 53,
    }
    verify_and_update("warm-up", None)  # makes the dummy hashes once, outside the timing
    costs = {}
    for name, stored in cases.items():
        start = time.process_time()
        for _ in range(3):
            assert verify_and_update("wrong password", stored) == (False, None)
        costs[name] = time.process_time() - start
    assert max(costs.values()) < 1.3 * min(costs.values()), costs


@hashing_only
def test_the_dummy_hash_has_todays_parameters_whatever_hasher_was_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dummy hash a refusal checks is made once per process. Made while a cheaper hasher
    was in place (tests/test_seed.py swaps one in), it made a refusal without a hash 4x cheaper
    than a wrong argon2id password for the rest of that process: a timing oracle."""
    passwords._dummy_hash.cache_clear()
    cheap = PasswordHash((cheap_argon2(),))
    monkeypatch.setattr(passwords, "_hasher", cheap)
    assert verify_and_update("wrong password", None) == (False, None)  # makes the dummy
    monkeypatch.undo()
    parameters = hash_password(PASSWORD).split("$")[3]  # m=…,t=…,p=…
    assert passwords._dummy_hash().split("$")[3] == parameters


async def test_authenticate_upgrades_a_bcrypt_hash_once(bcryptjs_hashes: dict[str, Any]) -> None:
    old = bcryptjs_hashes["$2a$"]
    user = await make_user(email="Ada@Example.com", password_hash=old)
    version = (await User.get(pk=user.pk)).credentials_version
    assert await authenticate("ada@example.com", "password124") is None
    assert (await User.get(pk=user.pk)).password_hash == old  # a refusal writes nothing
    signed_in = await authenticate("  ADA@example.com ", PASSWORD)
    assert signed_in is not None and signed_in.pk == user.pk
    stored = await User.get(pk=user.pk)
    assert stored.password_hash is not None and stored.password_hash.startswith("$argon2id$")
    assert signed_in.password_hash == stored.password_hash
    assert signed_in.credentials_version == stored.credentials_version == version + 1
    again = await authenticate("ada@example.com", PASSWORD)
    assert again is not None and again.password_hash == stored.password_hash  # not rewritten


async def test_concurrent_sign_ins_upgrade_once_and_both_succeed(
    bcryptjs_hashes: dict[str, Any],
) -> None:
    user = await make_user(password_hash=bcryptjs_hashes["$2b$"])
    first, second = await asyncio.gather(
        authenticate(user.email, PASSWORD), authenticate(user.email, PASSWORD)
    )
    assert first is not None and second is not None
    stored = await User.get(pk=user.pk)
    assert stored.password_hash is not None and stored.password_hash.startswith("$argon2id$")
    assert first.password_hash == second.password_hash == stored.password_hash
    assert stored.credentials_version == user.credentials_version + 1  # one write, not two


async def test_a_password_changed_during_sign_in_wins_over_the_upgrade(
    bcryptjs_hashes: dict[str, Any],
) -> None:
    """The upgrade is conditional on the hash it verified: a new password is never overwritten."""
    from coach_db.passwords import store_upgraded_hash

    old = bcryptjs_hashes["$2b$"]
    user = await make_user(password_hash=old)
    await User.filter(pk=user.pk).update(password_hash=hash_password("a new password"))
    assert not await store_upgraded_hash(user, old, hash_password(PASSWORD))
    assert verify_password("a new password", (await User.get(pk=user.pk)).password_hash)


async def test_saml_users_and_unknown_e_mails_cost_one_verification_and_fail() -> None:
    saml = await make_user()  # password_hash NULL
    for email, password in [(saml.email, ""), (saml.email, PASSWORD), ("nobody@x.org", PASSWORD)]:
        before = verification_count()
        assert await authenticate(email, password) is None
        assert verification_count() == before + 1
    assert (await User.get(pk=saml.pk)).password_hash is None


async def test_studio_sign_in_with_a_bcrypt_staff_hash_stores_argon2id(
    anonymous: Any, bcryptjs_hashes: dict[str, Any]
) -> None:
    staff = await make_user(
        email="Grace@Example.com", password_hash=bcryptjs_hashes["$2y$"], is_staff=True
    )
    assert (await sign_in(anonymous, "grace@example.com", "wrong")).status_code == 401
    assert (await User.get(pk=staff.pk)).password_hash == bcryptjs_hashes["$2y$"]
    response = await sign_in(anonymous, "GRACE@example.com", PASSWORD)
    assert response.status_code == 303
    stored = (await User.get(pk=staff.pk)).password_hash
    assert stored is not None and stored.startswith("$argon2id$")
    assert (await anonymous.get("/admin/")).status_code == 200  # the session survives it
