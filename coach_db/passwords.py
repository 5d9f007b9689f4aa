"""The one password hasher (argon2id, via pwdlib) shared by the app, the seed and the studio.

It also verifies the bcrypt hashes the Prisma package's Node app wrote (bcryptjs, `$2a$`,
`$2b$` or `$2y$`) and replaces each by an argon2id hash on its first successful sign-in.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from functools import cache
from typing import TYPE_CHECKING

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

if TYPE_CHECKING:
    from coach_db.models import User

# bcrypt reads at most 72 bytes of a password: bcryptjs (and Node's bcrypt) drop the rest
# without a word, so the Node app's users may have set longer passwords than they were checked on.
BCRYPT_MAX_BYTES = 72
# Longer than any e-mail the database accepts (user.email is varchar(254)): never looked up.
_MAX_EMAIL_CHARS = 254


class NodeBcryptHasher(BcryptHasher):
    """pwdlib's bcrypt hasher, verifying as bcryptjs hashed: only the first 72 bytes count.

    Python's bcrypt 5 raises on a longer password where bcryptjs truncated it; checking the
    same 72 bytes keeps the Node app's long passwords working until their hash is upgraded.
    """

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        raw = password.encode() if isinstance(password, str) else password
        return super().verify(raw[:BCRYPT_MAX_BYTES], hash)


# The Node app's cost: the dummy bcrypt check of a refusal costs what checking its hashes costs.
NODE_BCRYPT_ROUNDS = 10
_argon2 = Argon2Hasher()
_bcrypt = NodeBcryptHasher(rounds=NODE_BCRYPT_ROUNDS)
# The first hasher makes every new hash; the others only verify (and so get upgraded).
_hasher = PasswordHash((_argon2, _bcrypt))
# How many password checks this process ran: the tests use it to prove that the studio's rate
# limit bounds the password checks and that every refusal costs exactly one of them.
_verifications = 0
_lock = threading.Lock()


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, salted, ready for User.password_hash."""
    if not password:
        raise ValueError("A password may not be empty.")
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    # Today's argon2id parameters, so verifying against it costs what a real check costs. Made
    # by _argon2, not by whatever _hasher is when first needed: cached for the process, a dummy
    # made while a cheaper hasher was in place (tests swap one in) made refusals without a
    # hash 4x cheaper than a wrong argon2id password, for the rest of the process.
    return _argon2.hash(secrets.token_urlsafe(16))


@cache
def _dummy_bcrypt_hash() -> str:
    return _bcrypt.hash(secrets.token_urlsafe(16))


def _known(password_hash: str) -> bool:
    return any(hasher.identify(password_hash) for hasher in _hasher.hashers)


def verify_and_update(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash): pwdlib's verify-and-update, failing closed.

    The new hash is an argon2id one when `password` matches a hash that is not argon2id with
    today's parameters (a bcrypt hash from the Node app), else None. A refusal always costs one
    argon2id and one bcrypt (cost 10) verification, one of them against the stored hash when
    there is one and the other (or both) against a dummy hash: no hash (a SAML user), an
    unknown e-mail, a corrupt or foreign hash, an empty password and a wrong password against
    either kind of hash all take the same time, so none of them can be told apart by timing
    (argon2id alone, as before, would make a wrong password for a not yet upgraded bcrypt
    account faster than for an unknown e-mail).
    """
    global _verifications
    with _lock:
        _verifications += 1
    checked = None
    if password and password_hash and _known(password_hash):
        checked = _bcrypt if _bcrypt.identify(password_hash) else _argon2
        try:
            matches, new_hash = _hasher.verify_and_update(password, password_hash)
        except (UnknownHashError, ValueError):  # a corrupt hash is a refusal, not a crash
            matches, new_hash, checked = False, None, None
        if matches:
            return True, new_hash
    if checked is not _argon2:
        _hasher.verify(password or "-", _dummy_hash())
    if checked is not _bcrypt:
        _bcrypt.verify(password or "-", _dummy_bcrypt_hash())
    return False, None


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when `password` matches an argon2id or bcrypt hash; False otherwise (or no hash)."""
    return verify_and_update(password, password_hash)[0]


async def store_upgraded_hash(user: User, old_hash: str, new_hash: str) -> bool:
    """Replace `user`'s hash by `new_hash` unless it changed since `old_hash` was read.

    A conditional UPDATE: of two sign-ins upgrading the same hash at once, one writes and the
    other finds the row changed. Either way `user` ends with the stored hash and
    credentials_version (the database bumps it with the hash). Returns whether this call wrote.
    """
    from coach_db.db import primary
    from coach_db.models import User

    written = await User.filter(pk=user.pk, password_hash=old_hash).update(password_hash=new_hash)
    with primary():
        await user.refresh_from_db(fields=["password_hash", "credentials_version"])
    return bool(written)


async def authenticate(email: str, password: str) -> User | None:
    """The user with this e-mail if `password` is theirs, else None; upgrades a bcrypt hash.

    What a service calls to sign someone in: the e-mail is matched case-insensitively, a
    refusal (unknown e-mail, SAML user without a password, wrong password) costs the same one
    verification as a success, and a matching bcrypt hash written by the Node app is replaced by
    an argon2id one in the same call. Staff or not is the caller's business (`user.is_staff`).
    """
    from coach_db.db import primary
    from coach_db.models import User

    address = email.strip().lower()
    user = None
    if 0 < len(address) <= _MAX_EMAIL_CHARS:
        with primary():  # a replica may not have the newest hash yet
            user = await User.get_or_none(email=address)
    old_hash = user.password_hash if user else None
    matches, new_hash = await asyncio.to_thread(verify_and_update, password, old_hash)
    if user is None or old_hash is None or not matches:
        return None
    if new_hash is None or await store_upgraded_hash(user, old_hash, new_hash):
        return user
    # Someone else changed the hash since it was read: a concurrent sign-in's upgrade (then it
    # verifies) or a new password (then this sign-in used the old one and is refused).
    if await asyncio.to_thread(verify_password, password, user.password_hash):
        return user
    return None


def verification_count() -> int:
    """Password verifications run by this process so far (for tests and diagnostics)."""
    return _verifications
