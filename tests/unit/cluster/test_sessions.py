"""Worker sessions: an id is registered by one live credential, a heartbeat must come from the
owning token with its current session secret, and secrets are stored only as digests."""

from __future__ import annotations

import pytest

from gpucloud.cluster.sessions import (
    SESSION_PREFIX,
    WorkerCredential,
    check_heartbeat,
    check_registration,
    new_session,
)
from gpucloud.errors import Conflict, PermissionDenied
from gpucloud.keys import digest, well_formed


def test_a_session_is_a_fresh_well_formed_secret_and_its_digest() -> None:
    secret, stored = new_session()
    assert secret.startswith(SESSION_PREFIX)
    assert well_formed(secret, SESSION_PREFIX)
    assert stored == digest(secret)
    assert secret not in stored
    assert new_session()[0] != secret


def test_registration_is_refused_while_another_live_credential_holds_the_id() -> None:
    check_registration("w1", None, False, None)  # the embedded worker, in-process
    check_registration("w1", "wtk_a", True, "wtk_a")  # the owner registers again (a restart)
    check_registration("w1", "wtk_a", False, "wtk_b")  # the owner's token was revoked: free
    for owner, live in (("wtk_a", True), (None, False)):
        with pytest.raises(Conflict) as taken:
            check_registration("w1", owner, live, "wtk_b")
        assert (taken.value.code, taken.value.param) == ("worker_id_taken", "worker_id")


def test_a_heartbeat_needs_the_owning_token_and_the_current_session() -> None:
    secret, stored = new_session()
    check_heartbeat("w1", "wtk_a", stored, WorkerCredential("wtk_a", secret))
    with pytest.raises(PermissionDenied) as foreign:
        check_heartbeat("w1", "wtk_a", stored, WorkerCredential("wtk_b", secret))
    assert foreign.value.code == "worker_not_owned"
    old, _ = new_session()
    for session, current in ((old, stored), (None, stored), (secret, None)):
        with pytest.raises(Conflict) as ended:
            check_heartbeat("w1", "wtk_a", current, WorkerCredential("wtk_a", session))
        assert ended.value.code == "worker_session_ended"
