"""`KeyCache`: entries expire after the TTL, a change drops exactly the changed key, and a
subscription that may have missed changes drops everything."""

from __future__ import annotations

import pytest

from gpucloud.keycache import CachedKey, KeyCache, LocalKeyChanges


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("gpucloud.keycache.time.monotonic", fake)
    return fake


def _entry(key_id: str, clock: Clock) -> CachedKey:
    return CachedKey(key_id=key_id, principal=object(), expires_at=None, revoked=False, loaded_at=clock())


def test_an_entry_lives_for_the_ttl(clock: Clock) -> None:
    cache = KeyCache(ttl_s=5.0)
    cache.put("d1", _entry("k1", clock))
    clock.now += 4.9
    assert cache.get("d1") is not None
    clock.now += 0.2
    assert cache.get("d1") is None  # read again from the database after the TTL


def test_a_change_drops_only_that_key(clock: Clock) -> None:
    cache = KeyCache(ttl_s=5.0)
    cache.put("d1", _entry("k1", clock))
    cache.put("d2", _entry("k2", clock))
    cache.drop("k1")
    assert cache.get("d1") is None
    assert cache.get("d2") is not None
    cache.clear()
    assert cache.get("d2") is None


def test_a_full_cache_starts_over_instead_of_growing(clock: Clock) -> None:
    cache = KeyCache(ttl_s=5.0, max_entries=3)
    for i in range(3):
        cache.put(f"d{i}", _entry(f"k{i}", clock))
    cache.put("d3", _entry("k3", clock))
    assert [cache.get(f"d{i}") is not None for i in range(4)] == [False, False, False, True]


async def test_local_announcements_reach_the_listener() -> None:
    heard: list[str | None] = []
    changes = LocalKeyChanges()
    await changes.start(heard.append)
    await changes.announce("k1")
    await changes.close()
    assert heard == ["k1"]


async def test_every_subscriber_of_one_process_hears_each_announcement() -> None:
    # The key cache and the accounts' user cache share one announcer: a change one of them
    # announces (an organisation's allowed models) must drop the other's entries too.
    keys: list[str | None] = []
    users: list[str | None] = []
    changes = LocalKeyChanges()
    await changes.start(keys.append)
    await changes.start(users.append)
    await changes.announce("k1")
    await changes.close()  # one owner closed: the other still hears
    await changes.announce("k2")
    await changes.close()
    assert keys == ["k1", "k2"]
    assert users == ["k1", "k2"]
