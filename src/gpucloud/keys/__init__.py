"""API keys: their format, storage and authentication (docs/architecture.md §6).

A key is `gc_` + 43 base62 characters (256 random bits) + a 6-character base62 CRC32 checksum of
the random part. The checksum lets the gateway refuse mistyped or made-up keys without touching
the database, and lets secret scanners recognise ours. Only the SHA-256 digest (keys carry 256 bits
of entropy, so a plain digest cannot be brute-forced) and an 11-character display prefix are
stored; the secret exists in a response exactly once, when the key is created. The operator's own
key (GPUCLOUD_ADMIN_KEY, chosen by a person) stores no characters at all: it shows a fixed label,
and must be at least 32 characters (`check_operator_key`).

`secrets` is the format, `principal` who is calling, `service` the keys in the database.
"""

from gpucloud.keys.principal import BUDGET_PERIODS, EDITABLE, NewKey, OrgLimits, Principal
from gpucloud.keys.secrets import (
    DISPLAY_LEN,
    KEY_PREFIX,
    OPERATOR_LABEL,
    ROLES,
    WORKER_TOKEN_PREFIX,
    check_operator_key,
    digest,
    generate_key,
    generate_secret,
    well_formed,
)
from gpucloud.keys.service import KeyService

__all__ = [
    "BUDGET_PERIODS",
    "DISPLAY_LEN",
    "EDITABLE",
    "KEY_PREFIX",
    "OPERATOR_LABEL",
    "ROLES",
    "WORKER_TOKEN_PREFIX",
    "KeyService",
    "NewKey",
    "OrgLimits",
    "Principal",
    "check_operator_key",
    "digest",
    "generate_key",
    "generate_secret",
    "well_formed",
]
