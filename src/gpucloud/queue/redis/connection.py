"""The Redis client of the queue, and the one place where Redis errors become queue errors.

Failure rules (docs/architecture.md §4: an outage is a 503 with Retry-After, never a hang or a 500):

* every connect and every read has a timeout; blocking reads (`BLOCK`) are issued in slices of at
  most `MAX_BLOCK_S`, well under the socket timeout, so a blocking read never trips it;
* no retries inside the client: a command that failed may or may not have run, and the callers
  (gateway, worker agent, finalizer) already retry at their level with their own backoff; a
  connection broken by a Redis restart is replaced when it is next taken from the pool
  (`FreshPool` checks it), so the next call after Redis is back works;
* a redis `ConnectionError`/`TimeoutError` becomes `QueueUnavailable`; any other Redis error
  becomes `QueueError`. Messages name the operation and the error class only: the URL may
  carry a password and is never repeated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gpucloud.queue.protocol import QueueError, QueueUnavailable
from gpucloud.redis_pools import CONNECTION_CLOSED_UNDER_USE, RedisClient, redis_client

# A pipeline of either client (one server, or a cluster: there all its keys share one slot).
AnyPipeline: TypeAlias = Pipeline | ClusterPipeline

CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
# The longest single BLOCK: a longer wait is a loop of these (see the module docstring).
MAX_BLOCK_S = 1.0
# Idle pooled connections are PINGed before reuse after this long, to notice a restarted server.
HEALTH_CHECK_INTERVAL_S = 10
# Connections per process, and how long a command waits for one when all are busy. A burst of
# requests (each a sub-millisecond command) then shares a few connections instead of opening one
# each: hundreds of simultaneous connects on a busy host outlast the connect timeout.
MAX_CONNECTIONS = 64
POOL_WAIT_S = 5.0


def connect(url: str) -> RedisClient:
    """A client for `url` (a cluster for `redis+cluster://`); nothing connects before the first command."""
    return redis_client(
        url,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        socket_timeout_s=SOCKET_TIMEOUT_S,
        health_check_interval_s=HEALTH_CHECK_INTERVAL_S,
        max_connections=MAX_CONNECTIONS,
        pool_wait_s=POOL_WAIT_S,
    )


@contextmanager
def guard(action: str) -> Iterator[None]:
    """Turn Redis errors raised while doing `action` into the queue's errors."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, CONNECTION_CLOSED_UNDER_USE) as exc:
        raise QueueUnavailable(f"redis is unavailable ({action}: {type(exc).__name__})") from exc
    except RedisError as exc:
        raise QueueError(f"redis refused {action}: {type(exc).__name__}: {exc}") from exc


def block_ms(remaining_s: float) -> int:
    """The BLOCK argument for a wait of `remaining_s`, capped at `MAX_BLOCK_S` (0 would block forever)."""
    return max(1, int(min(remaining_s, MAX_BLOCK_S) * 1000))
