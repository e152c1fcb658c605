"""Password policy bounds and argon2id hashing: a hash verifies its password only, and an
unknown user (no hash) never matches."""

from __future__ import annotations

import pytest

from gpucloud.accounts.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, check_policy
from gpucloud.errors import InvalidRequest


def test_the_policy_takes_the_bounds_and_refuses_outside_them() -> None:
    check_policy("x" * MIN_LENGTH)
    check_policy("x" * MAX_LENGTH)
    with pytest.raises(InvalidRequest) as short:
        check_policy("x" * (MIN_LENGTH - 1), param="new_password")
    assert short.value.param == "new_password"
    assert str(MIN_LENGTH) in short.value.message
    with pytest.raises(InvalidRequest, match=str(MAX_LENGTH)):
        check_policy("x" * (MAX_LENGTH + 1))


async def test_a_hash_verifies_its_password_and_no_other() -> None:
    passwords = Passwords()
    hashed = await passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert await passwords.verify(hashed, "correct horse battery")
    assert not await passwords.verify(hashed, "correct horse battery ")
    assert await passwords.hash("correct horse battery") != hashed  # salted


async def test_no_hash_a_garbled_hash_or_an_oversized_password_never_match() -> None:
    passwords = Passwords()
    assert not await passwords.verify(None, "no such user: this hash is never matched")
    assert not await passwords.verify("not-an-argon2-hash", "whatever1")
    hashed = await passwords.hash("y" * MAX_LENGTH)
    assert await passwords.verify(hashed, "y" * MAX_LENGTH)
    assert not await passwords.verify(hashed, "y" * (MAX_LENGTH + 1))
