"""The Redis Streams implementation of the JobQueue protocol (cluster mode, docs/architecture.md §1, §4).

`queue` holds `RedisJobQueue`, `scripts` the Lua steps that must be atomic, `codec` how messages
sit in stream entries, `connection` the client's timeouts and the mapping of Redis errors to
`QueueUnavailable`/`QueueError`. Key names live in `gpucloud.queue.names`.
"""

from __future__ import annotations

from gpucloud.queue.redis.queue import RedisJobQueue

__all__ = ["RedisJobQueue"]
