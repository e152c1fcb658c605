"""Access tokens: issued tokens verify to their claims; tampered, expired, foreign or mis-shaped
ones are refused with one message; the signing secret is stored once and shared."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import SecretStr

from gpucloud.accounts.tokens import AUDIENCE, ISSUER, TokenSigner, looks_like_jwt, signing_secret
from gpucloud.db import Database
from gpucloud.errors import AuthenticationFailed

SECRET = "s" * 48


def _signer(ttl_s: int = 60, session_max_s: int = 3600) -> TokenSigner:
    return TokenSigner(SECRET, ttl_s=ttl_s, session_max_s=session_max_s)


def test_an_issued_token_verifies_to_its_claims() -> None:
    before = int(time.time())
    token = _signer().issue("usr_1", 4)
    assert looks_like_jwt(token)
    claims = _signer().verify(token)
    assert (claims.user_id, claims.version) == ("usr_1", 4)
    assert before <= claims.auth_time <= int(time.time())
    assert claims.expires_at - claims.auth_time == pytest.approx(60, abs=1)
    assert _signer().verify(_signer().issue("usr_1", 4, auth_time=123)).auth_time == 123


def test_each_token_is_unique() -> None:
    assert _signer().issue("usr_1", 1) != _signer().issue("usr_1", 1)


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "other"},
        {"iss": "someone-else"},
        {"exp": 1},
        {"ver": "1"},
        {"auth_time": 1.5},
    ],
)
def test_wrong_claims_are_refused(claims: dict[str, object]) -> None:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u",
        "ver": 1,
        "auth_time": now,
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode({**base, **claims}, SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationFailed) as refused:
        _signer().verify(token)
    assert refused.value.code == "invalid_token"


def test_a_missing_claim_another_key_or_garbage_are_refused() -> None:
    now = int(time.time())
    no_version = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "auth_time": now, "iat": now, "exp": now + 60}
    tokens = [
        jwt.encode(no_version, SECRET, algorithm="HS256"),
        TokenSigner("t" * 48, ttl_s=60, session_max_s=60).issue("u", 1),
        "eyJ.not.atoken",
        _tampered(_signer().issue("u", 1)),
    ]
    for token in tokens:
        with pytest.raises(AuthenticationFailed):
            _signer().verify(token)


def _tampered(token: str) -> str:
    """`token` with its signature's first character changed: it carries six whole bits, where the
    last one's low bits are padding that base64 decoding ignores."""
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def test_the_shape_test() -> None:
    assert not looks_like_jwt("gc_abc")
    assert not looks_like_jwt("eyJhbGciOi.only-two")
    assert looks_like_jwt("eyJa.b.c")


def test_refreshing_stops_session_max_after_sign_in() -> None:
    signer = _signer(session_max_s=100)
    now = int(time.time())
    assert signer.may_refresh(signer.verify(signer.issue("u", 1, auth_time=now - 50)))
    assert not signer.may_refresh(signer.verify(signer.issue("u", 1, auth_time=now - 101)))


async def test_the_signing_secret_is_the_configured_one_or_a_stored_one(db: Database) -> None:
    assert await signing_secret(db, SecretStr("configured-secret")) == "configured-secret"
    first = await signing_secret(db, None)
    assert len(first) >= 48
    assert await signing_secret(db, None) == first  # stored once, read again after
