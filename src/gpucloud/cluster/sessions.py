"""Worker sessions: one worker id, one credential.

Registration over HTTP binds a worker id to the worker token that registered it and hands the
worker a fresh session secret (`gcs_…`, stored only as its SHA-256). Every heartbeat must come
with the same token and that secret, so another token cannot beat as the worker, fake its load,
or read its assignments; it cannot register the id either while the owning token is live (a
revoked token releases its ids). Registering again with the owning token (a restarted worker)
starts a new session and ends the old one. Revoking a token ends its workers' sessions.
The embedded worker is the control plane's own process: it calls the directory in-process,
with no credential, and its id can never be taken over the API.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from gpucloud.errors import Conflict, PermissionDenied
from gpucloud.keys import digest, generate_secret

SESSION_PREFIX = "gcs_"


@dataclass(frozen=True, slots=True)
class WorkerCredential:
    """What a heartbeat over HTTP proves: its token, and the session secret it was given."""

    token_id: str
    session: str | None


def new_session() -> tuple[str, str]:
    """A session secret and its digest (only the digest is stored)."""
    secret = generate_secret(SESSION_PREFIX)
    return secret, digest(secret)


def check_registration(worker_id: str, owner: str | None, owner_live: bool, token_id: str | None) -> None:
    """Refuse to register `worker_id` for `token_id` when another live credential holds it.
    `owner` is the token that holds the id now (None: the embedded worker's, or nobody's row)."""
    if token_id is None or owner == token_id:
        return
    if owner is None or owner_live:
        raise Conflict(
            f"Worker id {worker_id!r} is registered with another credential; choose another --worker-id.",
            code="worker_id_taken",
            param="worker_id",
        )


def check_heartbeat(
    worker_id: str, owner: str | None, session_digest: str | None, cred: WorkerCredential
) -> None:
    """403 for a token that does not own the worker; 409 for a session that is not its current one."""
    if owner != cred.token_id:
        raise PermissionDenied(
            f"Worker {worker_id!r} belongs to another credential.", code="worker_not_owned"
        )
    given = digest(cred.session) if cred.session else ""
    if session_digest is None or not hmac.compare_digest(given, session_digest):
        raise Conflict(
            f"This session of worker {worker_id!r} has ended (registered again elsewhere, or its token "
            "was revoked); register again.",
            code="worker_session_ended",
        )
