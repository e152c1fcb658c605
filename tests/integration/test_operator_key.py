"""Findings 9 and 10 of the security review: the operator's admin key (GPUCLOUD_ADMIN_KEY).

No character of it is stored or shown; a mistaken value stops `gpucloud serve` at once with one
line and exit status 2 (never a server that answers 401 to everything, never a traceback); and
changing the variable revokes the previous key.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gpucloud.keys import generate_secret
from tests.support import SECRETS, make_server

GOOD_GC = generate_secret("gc_")
BAD_CHECKSUM = GOOD_GC[:-1] + ("A" if GOOD_GC[-1] != "A" else "B")
MISTAKES = {
    "short": "operator-" + "x" * 20,  # 29 characters
    "trailing newline": "operator-key-" + secrets.token_hex(16) + "\n",
    "inner space": "operator key " + secrets.token_hex(16),
    "worker token": generate_secret("gcw_"),
    "gc_ with a bad checksum": BAD_CHECKSUM,
}
SECRETS.update(value.strip() for value in MISTAKES.values())
SECRETS.add(GOOD_GC)


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistaken_admin_key_stops_serve_with_one_line(tmp_path: Path, mistake: str) -> None:
    server = make_server(tmp_path, env={"GPUCLOUD_ADMIN_KEY": MISTAKES[mistake]})
    done = subprocess.run(
        [sys.executable, "-m", "gpucloud", "serve", "--port", "0", "--data-dir", str(server.data_dir)],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: GPUCLOUD_ADMIN_KEY: ")
    assert "Traceback" not in done.stderr
    assert MISTAKES[mistake].strip() not in done.stderr + done.stdout


def test_no_character_of_the_operator_key_is_stored_or_shown_and_rotation_revokes(tmp_path: Path) -> None:
    first = "op-" + secrets.token_urlsafe(30)
    SECRETS.add(first)
    server = make_server(tmp_path, env={"GPUCLOUD_ADMIN_KEY": first})
    server.start()
    try:
        r = httpx.get(f"{server.base_url}/api/keys", headers={"Authorization": f"Bearer {first}"})
        assert r.status_code == 200, r.text
        operator = [k for k in r.json()["data"] if k["name"] == "admin (GPUCLOUD_ADMIN_KEY)"]
        assert [k["prefix"] for k in operator] == ["(operator key)"]
        for start in range(len(first) - 5):
            assert first[start : start + 6] not in r.text
    finally:
        server.stop()
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("gpucloud.db*"))
    assert first[:6].encode() not in stored
    # The same data with a new GPUCLOUD_ADMIN_KEY (a good gc_ key this time): the old one is revoked.
    server.env["GPUCLOUD_ADMIN_KEY"] = GOOD_GC
    server.start()
    try:
        old = httpx.get(f"{server.base_url}/api/keys", headers={"Authorization": f"Bearer {first}"})
        assert old.status_code == 401
        r = httpx.get(f"{server.base_url}/api/keys", headers={"Authorization": f"Bearer {GOOD_GC}"})
        assert r.status_code == 200
        operator = [k for k in r.json()["data"] if k["name"] == "admin (GPUCLOUD_ADMIN_KEY)"]
        assert sorted(k["revoked_at"] is None for k in operator) == [False, True]
        assert GOOD_GC[:11] not in r.text
    finally:
        server.stop()
