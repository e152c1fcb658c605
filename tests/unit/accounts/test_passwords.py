"""Password policy bounds and argon2id hashing: a hash verifies its password only, and an
unknown user (no hash) never matches."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from gpucloud.accounts.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, check_policy
from gpucloud.errors import InvalidRequest


def cheap_passwords() -> Passwords:
    """Real argon2id, with the cheapest parameters it takes (the defaults cost ~1 s here)."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


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
    passwords = cheap_passwords()
    hashed = await passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert "correct horse" not in hashed
    assert await passwords.verify(hashed, "correct horse battery")
    assert not await passwords.verify(hashed, "correct horse battery ")
    assert await passwords.hash("correct horse battery") != hashed  # salted


async def test_no_hash_a_garbled_hash_or_an_oversized_password_never_match() -> None:
    passwords = cheap_passwords()
    assert not await passwords.verify(None, "no such user: this hash is never matched")
    assert not await passwords.verify("not-an-argon2-hash", "whatever1")
    hashed = await passwords.hash("y" * MAX_LENGTH)
    assert await passwords.verify(hashed, "y" * MAX_LENGTH)
    assert not await passwords.verify(hashed, "y" * (MAX_LENGTH + 1))


async def test_the_default_parameters_are_the_librarys_recommended_ones() -> None:
    hashed = await Passwords().hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
