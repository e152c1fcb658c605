"""The `gpucloud` command line: `serve`, `keys`, `db`, `openapi`.

Each command reads `Settings` once (environment), applies its flags on top, and passes the result
down; the CLI is the entry point docs/architecture.md §3 speaks of.
"""

from gpucloud.cli.main import app, main

__all__ = ["app", "main"]
