"""The secrets' format: `gc_` keys (and the `gcw_` tokens that share it), checksums, digests,
and the checks an operator-chosen admin key must pass."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

KEY_PREFIX = "gc_"
WORKER_TOKEN_PREFIX = "gcw_"  # noqa: S105 (a prefix, not a secret); worker tokens (gpucloud.cluster.tokens); never an API key
ROLES = ("admin", "user")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LEN = 43  # ceil(256 / log2(62))
_CHECK_LEN = 6
_DISPLAY_LEN = 11
DISPLAY_LEN = _DISPLAY_LEN
_MIN_OPERATOR_KEY_LEN = 32
# What an operator-chosen key shows instead of its first characters: none of it is stored.
OPERATOR_LABEL = "(operator key)"
OPERATOR_NAME = "admin (GPUCLOUD_ADMIN_KEY)"
_OTHER_SECRET_PREFIXES = ("gcw_", "gcs_")  # worker tokens and worker sessions are never API keys


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LEN)


def generate_secret(prefix: str) -> str:
    """`prefix` + 43 base62 characters (256 random bits) + their 6-character checksum. API keys
    use `gc_`, worker tokens `gcw_` (`gpucloud.cluster.tokens`): distinct prefixes keep one kind
    from ever passing for the other, and let secret scanners tell them apart."""
    body = _base62(secrets.randbits(256), _BODY_LEN)
    return f"{prefix}{body}{_checksum(body)}"


def generate_key() -> str:
    return generate_secret(KEY_PREFIX)


def well_formed(key: str, prefix: str = KEY_PREFIX) -> bool:
    """True for a `prefix` secret whose checksum matches; cheap, no database."""
    if not key.startswith(prefix) or len(key) != len(prefix) + _BODY_LEN + _CHECK_LEN:
        return False
    body, check = key[len(prefix) : -_CHECK_LEN], key[-_CHECK_LEN:]
    if any(c not in _ALPHABET for c in body):
        return False
    return hmac.compare_digest(_checksum(body), check)


def check_operator_key(secret: str) -> None:
    """ValueError (a one-line message that never quotes the key) unless `secret` is usable as
    GPUCLOUD_ADMIN_KEY: printable ASCII with no whitespace (a trailing newline from a file is the
    usual mistake), at least 32 characters, not a worker token, and a valid key if it is `gc_`."""
    if any(c.isspace() for c in secret):
        raise ValueError("contains whitespace (a trailing newline?); remove it")
    if not secret.isascii() or not secret.isprintable():
        raise ValueError("must be printable ASCII characters")
    if secret.startswith(_OTHER_SECRET_PREFIXES):
        raise ValueError("is a worker token (gcw_) or session (gcs_), not an API key")
    if secret.startswith(KEY_PREFIX) and not well_formed(secret):
        raise ValueError("starts with gc_ but is not a valid gpucloud key (bad checksum)")
    if len(secret) < _MIN_OPERATOR_KEY_LEN:
        raise ValueError(f"must be at least {_MIN_OPERATOR_KEY_LEN} characters")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
