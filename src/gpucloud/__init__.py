"""gpucloud: a self-hosted GPU inference cloud.

The package is organised by concept (docs/architecture.md §2): `gateway` speaks HTTP, `queue` delivers jobs,
`worker` runs engines, `engines` run models, `db` stores rows, and the domain modules (`keys`,
`usage`, `jobs`, `registry`) hold the rules. Nothing is built at import time: `gateway.create_app`
and `cli` assemble the parts from a `Settings` object read once at the entry point.
"""

__version__ = "0.1.0"
