"""Names both sides of the worker ↔ control-plane HTTP API use. A module of its own, with no
imports, so that `gpucloud worker` can speak the API without loading the control plane's
modules (the `cluster` package reads the database)."""

# The header a worker presents its session secret in on every heartbeat (cluster.sessions).
SESSION_HEADER = "x-gpucloud-worker-session"
