"""Every Lua script and transaction of the Redis queue touches keys of one Redis Cluster hash slot.

The scripts' KEYS (and the keys the lease script builds itself, the progress hashes), and the
keys of the MULTI transactions (`begin`, `publish`, `ack_outcomes`, `cancel`), are all built from
`RedisNames`; this checks, with redis-py's own slot function, that for awkward model names, job
ids and reply channels they land in one slot, and that the slot follows the prefix."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from gpucloud.queue.names import RedisNames
from gpucloud.queue.protocol import PRIORITIES_HIGH_FIRST

MODELS = ["llama-3-8b", "org/model:v2", "a}b", "{x}", "}", "ünïcode", "m" * 200]
JOB_IDS = ["job_0123456789abcdef", "job_}{", "x"]
REPLY_TO = ["gw-1-abcdef", "host:1234:{pid}", "}"]


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def every_queue_key(names: RedisNames) -> list[str]:
    keys = [names.outcomes(), names.dead_jobs(), names.dead_order(), names.workers()]
    keys += [names.models_seen(), names.epoch(), names.lease("metrics")]
    for model in MODELS:
        keys += [names.jobs(model, priority) for priority in PRIORITIES_HIGH_FIRST]
    for job_id in JOB_IDS:
        keys += [names.progress(job_id), names.cancelled(job_id), names.submitted(job_id, 0)]
    keys += [names.events(reply_to) for reply_to in REPLY_TO]
    return keys


@pytest.mark.parametrize("prefix", ["gc", "gctest-0123abcd", "a.b_c-d"])
def test_every_queue_key_of_a_prefix_is_in_one_slot(prefix: str) -> None:
    names = RedisNames(prefix)
    keys = every_queue_key(names)
    assert {slot(key) for key in keys} == {slot("{" + prefix + "}")}
    assert all(key.startswith("{" + prefix + "}:") for key in keys)
    # The lease script builds progress keys itself from this prefix: the same keys.
    assert all(names.progress_prefix() + job_id == names.progress(job_id) for job_id in JOB_IDS)


def test_the_lease_script_over_several_models_is_one_slot() -> None:
    """The widest script: outcomes, dead letters and every class of several models at once."""
    names = RedisNames("gc")
    streams = [names.jobs(model, priority) for priority in PRIORITIES_HIGH_FIRST for model in MODELS]
    keys = [names.outcomes(), names.dead_jobs(), names.dead_order(), *streams]
    assert len({slot(key) for key in keys}) == 1


def test_prefixes_spread_over_slots() -> None:
    """Deployments (or test runs) sharing a cluster put their queues on different slots."""
    slots = {slot(RedisNames(f"gc{n}").outcomes()) for n in range(50)}
    assert len(slots) > 40


def test_names_stay_distinct() -> None:
    """Braces and colons in variable parts cannot make two names collide."""
    keys = every_queue_key(RedisNames("gc"))
    assert len(keys) == len(set(keys))
