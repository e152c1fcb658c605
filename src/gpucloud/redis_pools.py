"""Redis connection pools that never hand out a connection its peer closed or reset while idle.

redis-py's own check on checkout misses both: it ignores a closed stream while maintenance
notifications are on (the default, "auto", in redis-py 8) and never sees a reset one. Such a
connection fails its next command, so after an outage each stale pooled connection would cost one
more client a 503, however long after Redis came back it is next used. The queue and the limit
stores both get their clients from `redis_client`, which also fixes the rest of the connection
policy in one place.

Redis Cluster (docs/architecture.md §10): a URL whose scheme is `redis+cluster://` or
`rediss+cluster://` (what `Settings.redis_dsn` returns when `GPUCLOUD_REDIS_CLUSTER` is true) gives
a `RedisCluster` client instead, seeded from that one node; it learns the other nodes and the slot
map itself. The same policy holds there: no retries (a failed command makes the client re-read the
slot map before its next command instead), a bounded number of connections per node. Its
connections are not checked by `FreshPool`: a connection that died while idle fails one command,
which also makes the client drop that node's idle connections.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# What every Redis user in the project holds: one server or a cluster, the same commands.
RedisClient: TypeAlias = Redis | RedisCluster

# When one connection to a cluster node fails, redis-py's cluster client closes that node's other
# connections, also under commands still using them; such a command then fails with the event
# loop's RuntimeError ("the handler is closed") instead of a redis ConnectionError. The callers'
# guards count it as Redis being unavailable (what it is), not as a bug of theirs (a 500).
CONNECTION_CLOSED_UNDER_USE = RuntimeError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# Connections per cluster node when the caller sets no bound. A cluster node refuses a command at
# once (MaxConnectionsError, no waiting) when its connections are all busy, so the bound is higher
# than a single server's waiting pool.
CLUSTER_MAX_CONNECTIONS = 512


def cluster_url(url: str) -> str | None:
    """`url` with its plain scheme when it names a Redis Cluster (`redis+cluster://…`), else None."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower()) if sep else None
    return None if plain is None else f"{plain}://{rest}"


def as_cluster_url(url: str) -> str:
    """`url` with the cluster scheme (`redis://` → `redis+cluster://`); unchanged if it has one."""
    if cluster_url(url) is not None:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES.values():
        raise ValueError("a Redis Cluster URL starts with redis:// or rediss://")
    return f"{scheme.lower()}+cluster://{rest}"


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
) -> RedisClient:
    """A client for `url` with gpucloud's policy; nothing connects before the first command.

    Responses are decoded; the client never retries by itself (a failed command may or may not
    have run, and every caller retries at its own level); idle connections are PINGed after
    `health_check_interval_s`. With `max_connections` the pool is bounded and a command waits up
    to `pool_wait_s` for a connection instead of failing at once. A cluster URL gives a
    `RedisCluster` (see the module docstring).
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": socket_timeout_s,
        "health_check_interval": health_check_interval_s,
        "retry": Retry(NoBackoff(), 0),
    }
    plain = cluster_url(url)
    if plain is not None:
        bound = max(max_connections or 0, CLUSTER_MAX_CONNECTIONS)
        return RedisCluster.from_url(plain, max_connections=bound, **options)
    pool: ConnectionPool
    if max_connections is None:
        pool = FreshPool.from_url(url, **options)
    else:
        pool = FreshBlockingPool.from_url(
            url, max_connections=max_connections, timeout=pool_wait_s, **options
        )
    return Redis.from_pool(pool)


async def subscriber(client: RedisClient) -> PubSub:
    """A pub/sub object of `client` that skips subscribe confirmations.

    A cluster client learns the slot map first: its pub/sub connects to the node serving the
    channel's slot, looked up in that map, which a client that has not run a command yet lacks
    (redis-py then fails with a KeyError). A PUBLISH reaches every node, so any node will do.
    """
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client.pubsub(ignore_subscribe_messages=True)
