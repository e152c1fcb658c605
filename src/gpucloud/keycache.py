"""`KeyCache`: authenticated API keys kept in each gateway process, with instant revocation.

Every inference request authenticates its key; reading the key's row each time was one database
read per request. The cache keeps, per key digest, what authentication needs (the principal with
its limits, the expiry, whether it is revoked), so a known key costs no I/O at all.

Keeping it exact — a revoke, an expiry, a PATCH of limits or a role change reaches every gateway
within a second:

* **Changes are announced** (`KeyChanges`): whoever changes a key publishes its id after the
  commit; every gateway drops that key from its cache on receipt, so its next request reads the
  row again. In cluster mode that is Redis pub/sub (`{<prefix>}:keys:changed`), which every gateway
  subscribes to (the CLI publishes there too when it has the Redis URL). In embedded mode the
  gateway is one process, so its own changes are a call; the CLI may still change keys in the same
  SQLite file from another process, so the gateway also asks SQLite every 250 ms whether another
  connection changed the file (`PRAGMA data_version`, answered from memory) and then drops the
  whole cache: at most four re-reads of each active key per second under load, none when idle.
* **A short TTL is the safety net** (`ttl_s`, 5 s by default): an entry older than that is read
  again, so a change whose announcement was lost (a subscriber that was reconnecting, a CLI without
  Redis) is seen within the TTL. When the subscription drops and comes back, the whole cache is
  cleared, since announcements may have been missed meanwhile.
* **Expiry is checked on every hit** against the cached `expires_at`, so an expiry needs no
  announcement at all.

Unknown digests are not cached (a key created a moment ago works at once); failed attempts are
throttled elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from redis.exceptions import RedisError

from gpucloud.background import Background
from gpucloud.queue.names import RedisNames
from gpucloud.redis_pools import CONNECTION_CLOSED_UNDER_USE, RedisClient, redis_client, subscriber
from gpucloud.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedKey:
    """What authentication needs of a key row. `principal` is a `keys.Principal`."""

    key_id: str
    principal: object
    expires_at: datetime | None
    revoked: bool
    loaded_at: float  # time.monotonic() when it was read from the database


class KeyCache:
    """Digest → `CachedKey`, with a TTL and drops by key id (see module docstring)."""

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 100_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._by_digest: dict[str, CachedKey] = {}
        self._digests: dict[str, set[str]] = {}  # key id → its cached digests (one, in practice)

    def get(self, digest: str) -> CachedKey | None:
        entry = self._by_digest.get(digest)
        if entry is None:
            return None
        if time.monotonic() - entry.loaded_at > self._ttl_s:
            self._drop_digest(digest)
            return None
        return entry

    def put(self, digest: str, entry: CachedKey) -> None:
        if len(self._by_digest) >= self._max_entries:
            self.clear()  # a flood of distinct valid keys: start over rather than grow without bound
        self._by_digest[digest] = entry
        self._digests.setdefault(entry.key_id, set()).add(digest)

    def drop(self, key_id: str) -> None:
        for digest in self._digests.pop(key_id, set()):
            self._by_digest.pop(digest, None)

    def clear(self) -> None:
        self._by_digest.clear()
        self._digests.clear()

    def _drop_digest(self, digest: str) -> None:
        entry = self._by_digest.pop(digest, None)
        if entry is not None:
            self._digests.get(entry.key_id, set()).discard(digest)


class KeyChanges(Protocol):
    """Announces changed keys to every gateway process, and delivers announcements to this one."""

    async def start(self, on_change: Callable[[str | None], None]) -> None:
        """Call `on_change(key_id)` for every announcement, `on_change(None)` when some may have
        been missed (drop everything). Several parts of a process may subscribe (the key cache,
        the accounts' user cache); each closes once, and the last close stops the listening."""
        ...

    async def announce(self, key_id: str) -> None: ...

    async def close(self) -> None: ...


class Subscribers:
    """The callbacks one `KeyChanges` delivers to, and how many of their owners have not closed."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[str | None], None]] = []
        self._open = 0

    def add(self, on_change: Callable[[str | None], None]) -> None:
        self._callbacks.append(on_change)
        self._open += 1

    def __call__(self, key_id: str | None) -> None:
        for callback in self._callbacks:
            callback(key_id)

    def release(self) -> bool:
        """One owner closes; True when none is left (the listening may stop)."""
        self._open = max(0, self._open - 1)
        return self._open == 0


class LocalKeyChanges:
    """Embedded mode: one gateway process, so an announcement is a direct call; with `sqlite_path`
    it also drops the cache when another process changed the database file (module docstring)."""

    def __init__(self, sqlite_path: str | None = None, every_s: float = 0.25) -> None:
        self._subscribers = Subscribers()
        self._path = sqlite_path
        self._every_s = every_s
        self._connection: sqlite3.Connection | None = None
        self._loop = Background("key-changes", self._watch)

    async def start(self, on_change: Callable[[str | None], None]) -> None:
        self._subscribers.add(on_change)
        if self._path is not None:
            self._loop.start()

    async def announce(self, key_id: str) -> None:
        self._subscribers(key_id)

    async def _watch(self) -> None:
        seen: int | None = None
        while True:
            try:
                version = await asyncio.to_thread(self._data_version)
            except sqlite3.Error as exc:
                log.warning("could not read the database's change counter: %s", exc)
                version = None
            if version is not None and seen is not None and version != seen:
                self._subscribers(None)
            seen = version
            await asyncio.sleep(self._every_s)

    def _data_version(self) -> int:
        # One connection for the process's life: the counter is per connection.
        if self._connection is None:
            self._connection = sqlite3.connect(self._path or "", check_same_thread=False)
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    async def close(self) -> None:
        if not self._subscribers.release():
            return
        await self._loop.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class RedisKeyChanges:
    """Cluster mode: Redis pub/sub on one channel that every gateway subscribes to."""

    def __init__(self, client: RedisClient, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._subscribers = Subscribers()
        self._loop = Background("key-changes", self._listen)
        self._subscribed = asyncio.Event()

    async def start(self, on_change: Callable[[str | None], None]) -> None:
        self._subscribers.add(on_change)
        self._loop.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def announce(self, key_id: str) -> None:
        try:
            await self._client.publish(self._channel, key_id)
        except (RedisError, CONNECTION_CLOSED_UNDER_USE) as exc:
            # The TTL still bounds how long other gateways trust the old row.
            log.warning("could not announce a change of key %s: %s", key_id, exc)
        self._subscribers(key_id)  # this process at once, whatever Redis did

    async def _listen(self) -> None:
        while True:
            try:
                await self._follow()
            except (RedisError, OSError, CONNECTION_CLOSED_UNDER_USE) as exc:
                log.warning("key change subscription lost, resubscribing: %s", exc)
            self._subscribers(None)  # announcements may have been missed meanwhile
            await asyncio.sleep(0.5)

    async def _follow(self) -> None:
        async with await subscriber(self._client) as pubsub:
            await pubsub.subscribe(self._channel)
            self._subscribers(None)  # changes before this subscription were not heard
            self._subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is not None and message.get("type") == "message":
                    self._subscribers(str(message["data"]))

    async def close(self) -> None:
        if not self._subscribers.release():
            return
        await self._loop.close()
        await self._client.aclose()


def key_changes(settings: Settings) -> KeyChanges:
    """How key changes reach every gateway: Redis pub/sub in cluster mode, a call in embedded mode.
    Here, not in `runtime`, so that the CLI's key commands need not import the gateway."""
    url = settings.redis_dsn()
    if url is None:
        database = settings.resolved_database_url()
        sqlite_file = database.split(":///", 1)[1] if database.startswith("sqlite") else None
        return LocalKeyChanges(sqlite_file)
    client = redis_client(url, connect_timeout_s=2.0, socket_timeout_s=60.0)
    return RedisKeyChanges(client, RedisNames(settings.redis_prefix).keys_changed())
