"""Redis connection pools that never hand out a connection its peer closed or reset while idle.

redis-py's own check on checkout misses both: it ignores a closed stream while maintenance
notifications are on (the default, "auto", in redis-py 8) and never sees a reset one. Such a
connection fails its next command, so after an outage each stale pooled connection would cost one
more client a 503, however long after Redis came back it is next used. The queue and the limit
stores both get their clients from `redis_client`, which also fixes the rest of the connection
policy in one place.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


async def _drop_if_stale(connection: AbstractConnection) -> None:
    reader = connection._reader
    if reader is not None and (reader.at_eof() or reader.exception() is not None):
        await connection.disconnect()  # the pool reconnects it before use


class FreshPool(ConnectionPool):
    async def ensure_connection(self, connection: AbstractConnection) -> None:
        await _drop_if_stale(connection)
        await super().ensure_connection(connection)


class FreshBlockingPool(BlockingConnectionPool):
    async def ensure_connection(self, connection: AbstractConnection) -> None:
        await _drop_if_stale(connection)
        await super().ensure_connection(connection)


def redis_client(
    url: str,
    *,
    connect_timeout_s: float,
    socket_timeout_s: float,
    health_check_interval_s: int = 10,
    max_connections: int | None = None,
    pool_wait_s: float | None = None,
) -> Redis:
    """A client for `url` with gpucloud's policy; nothing connects before the first command.

    Responses are decoded; the client never retries by itself (a failed command may or may not
    have run, and every caller retries at its own level); idle connections are PINGed after
    `health_check_interval_s`. With `max_connections` the pool is bounded and a command waits up
    to `pool_wait_s` for a connection instead of failing at once.
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": socket_timeout_s,
        "health_check_interval": health_check_interval_s,
        "retry": Retry(NoBackoff(), 0),
    }
    pool: ConnectionPool
    if max_connections is None:
        pool = FreshPool.from_url(url, **options)
    else:
        pool = FreshBlockingPool.from_url(
            url, max_connections=max_connections, timeout=pool_wait_s, **options
        )
    return Redis.from_pool(pool)
