"""The one password hasher (argon2id, via pwdlib) shared by the app, the seed and the studio."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, salted, ready for User.password_hash."""
    if not password:
        raise ValueError("A password may not be empty.")
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when `password` matches; False for a wrong password or a user without one (SAML)."""
    if not password or not password_hash:
        return False
    try:
        return _hasher.verify(password, password_hash)
    except UnknownHashError:  # a corrupt or foreign hash is a failed sign-in, not a crash
        return False
