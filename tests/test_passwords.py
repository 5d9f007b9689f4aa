"""The shared hasher: argon2id, verifies what it hashed, refuses everything else."""

import pytest

from coach_db.passwords import hash_password, verify_password


def test_hash_is_argon2id_and_salted() -> None:
    first, second = hash_password("password123"), hash_password("password123")
    assert first.startswith("$argon2id$")
    assert first != second


def test_verify_accepts_the_right_password_only() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("Correct horse", stored)


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$2b$12$bcryptlooking"])
def test_verify_fails_closed_on_missing_or_foreign_hashes(stored: str | None) -> None:
    assert not verify_password("anything", stored)


def test_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_long_passwords_are_not_truncated() -> None:
    long = "x" * 200
    stored = hash_password(long)
    assert verify_password(long, stored)
    assert not verify_password(long[:72], stored)
