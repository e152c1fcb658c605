"""The `gpucloud` command line: `serve`, `worker`, `workers`, `keys`, `users`, `db`,
`openapi`, `bench`.

Each command reads `Settings` once (environment), applies its flags on top, and passes the result
down; the CLI is the entry point docs/architecture.md §3 speaks of.
"""

from gpucloud.cli.bench import bench
from gpucloud.cli.main import app, main
from gpucloud.cli.serve import openapi, serve
from gpucloud.cli.worker import worker

# Commands with many flags live in modules of their own; `bench` is a client (no settings, no database).
app.command("serve")(serve)
app.command("worker")(worker)
app.command("openapi")(openapi)
app.command("bench")(bench)

__all__ = ["app", "main"]
