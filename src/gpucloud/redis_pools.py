"""Redis connection pools that never hand out a connection its peer closed or reset while idle.

redis-py's own check on checkout misses both: it ignores a closed stream while maintenance
notifications are on (the default, "auto", in redis-py 8) and never sees a reset one. Such a
connection fails its next command, so after an outage each stale pooled connection would cost one
more client a 503, however long after Redis came back it is next used. The queue and the limit
stores both use these pools.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, ConnectionPool
from redis.asyncio.connection import AbstractConnection


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
