"""The one password hasher (argon2id, via pwdlib) shared by the app, the seed and the studio."""

from __future__ import annotations

import secrets
import threading
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

_argon2 = Argon2Hasher()
_hasher = PasswordHash((_argon2,))
# How many argon2 verifications this process ran: the tests use it to prove that the studio's
# rate limit bounds the password checks and that every refusal costs exactly one of them.
_verifications = 0
_lock = threading.Lock()


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, salted, ready for User.password_hash."""
    if not password:
        raise ValueError("A password may not be empty.")
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    # Same parameters as a real hash, so verifying against it costs what a real check costs.
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when `password` matches; False for a wrong password or a user without one (SAML).

    Always exactly one argon2 verification, also when there is nothing to compare against (no
    hash, a corrupt or foreign hash, an empty password): a refusal takes as long as any other,
    so accounts without a password cannot be told apart by timing.
    """
    global _verifications
    with _lock:
        _verifications += 1
    if not password or not password_hash or not _argon2.identify(password_hash):
        _hasher.verify(password or "-", _dummy_hash())
        return False
    try:
        return _hasher.verify(password, password_hash)
    except UnknownHashError:  # a corrupt or foreign hash is a failed sign-in, not a crash
        return False


def verification_count() -> int:
    """argon2 verifications run by this process so far (for tests and diagnostics)."""
    return _verifications
