"""A GPU machine's `gpucloud worker` loads no control-plane code: it speaks to the queue and the
control plane's HTTP API only (architecture §2), so SQLAlchemy, Alembic, the database drivers and
the gateway's FastAPI are never imported by it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests.support import REDIS_URL

pytestmark = pytest.mark.redis

# Runs the real CLI in this interpreter, as `gpucloud worker --burst` (drain the queue, then exit),
# then reports which control-plane modules the run loaded.
PROBE = """
import json, sys
from gpucloud.cli import main
sys.argv = ["gpucloud", "worker", "--model", "probe-model", "--burst", "--redis-url", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = [m for m in ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "fastapi") if m in sys.modules]
print(json.dumps({"exit": code, "loaded": loaded, "worker": "gpucloud.worker.agent" in sys.modules}))
"""


def test_a_worker_run_loads_no_database_or_gateway_module() -> None:
    env = {"GPUCLOUD_REDIS_PREFIX": f"gctest-{uuid.uuid4().hex[:10]}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, REDIS_URL], capture_output=True, text=True, timeout=60, env=env
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"exit": 0, "loaded": [], "worker": True}, done.stderr[-2000:]
