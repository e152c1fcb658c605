"""The `gpucloud` command line: `serve`, `keys`, `db`, `openapi`, `bench`.

Each command reads `Settings` once (environment), applies its flags on top, and passes the result
down; the CLI is the entry point docs/architecture.md §3 speaks of.
"""

from gpucloud.cli.bench import bench
from gpucloud.cli.main import app, main

app.command("bench")(bench)  # a client command: its own module, no settings or database

__all__ = ["app", "main"]
