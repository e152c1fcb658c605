"""Password hashing (argon2id through argon2-cffi) and the password policy.

Hashing and verifying cost tens of milliseconds of CPU on purpose; the async methods run them in a
thread so that a sign-in never stalls the gateway's event loop.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gpucloud.errors import InvalidRequest

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a request from buying minutes of CPU


def check_policy(password: str, param: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"The password must have at least {MIN_LENGTH} characters.", param=param)
    if len(password) > MAX_LENGTH:
        raise InvalidRequest(f"The password must have at most {MAX_LENGTH} characters.", param=param)


class Passwords:
    """argon2id with the library's recommended parameters (a `hasher` with others may be given:
    the unit tests use cheap ones, since each default hash costs about a second on a busy CPU)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; a None hash (unknown user, no password) never matches,
        but costs as much to check, so that timing does not tell which emails have accounts."""
        if len(password) > MAX_LENGTH:
            return False
        if self._decoy is None:
            self._decoy = await self.hash("no such user: this hash is never matched")
        return await asyncio.to_thread(self._verify, password_hash or self._decoy, password) and bool(
            password_hash
        )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
