"""How the Redis queue's messages are stored in stream entries, and how replies are read back.

* job entry: field `job` = `JobMessage.to_dict()` as JSON (Lua reads `job_id`, `stream`,
  `attempt_base`, `reply_to` and `model` from it);
* outcome entry: field `o` = `Outcome.to_dict()` as JSON (Lua writes DEAD and INTERRUPTED ones);
* event entry: field `e` = a JSON list of `JobEvent.to_dict()`, one entry per `publish` call, so
  a batch of token deltas costs one XADD;
* dead letter: hash value `{"attempts", "at", "job"}` written by the lease script.

Replies are checked as they are unpacked: a reply of an unexpected shape is a bug or a foreign
writer, and fails here with a clear `QueueError` instead of deep inside a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gpucloud.queue.protocol import JobEvent, JobMessage, Lease, Outcome, QueueError

JOB_FIELD = "job"
OUTCOME_FIELD = "o"
EVENTS_FIELD = "e"

# A stream entry as redis-py returns it with decode_responses: (id, {field: value}).
Entry = tuple[str, dict[str, str]]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def job_json(job: JobMessage) -> str:
    return dumps(job.to_dict())


def leases_from_script(worker_id: str, flat: Sequence[Any]) -> list[Lease]:
    """Leases from the lease script's flat `{id, job JSON, delivery count, ...}` list."""
    leases: list[Lease] = []
    for i in range(0, len(flat) - 2, 3):
        entry_id, raw, deliveries = str(flat[i]), str(flat[i + 1]), int(flat[i + 2])
        job = JobMessage.from_dict(orjson.loads(raw))
        leases.append(
            Lease(job=job, attempt=job.attempt_base + deliveries, worker_id=worker_id, token=entry_id)
        )
    return leases


def deliveries(lease: Lease) -> int:
    """The delivery count of the stream entry that `lease` holds (what the scripts fence on)."""
    return lease.attempt - lease.job.attempt_base


def entries(reply: Any) -> list[Entry]:
    """The entries of an XAUTOCLAIM reply's second element or one stream of an XREAD reply."""
    if not isinstance(reply, list):
        raise QueueError(f"unexpected stream reply {type(reply).__name__}")
    out: list[Entry] = []
    for item in reply:
        entry_id, fields = item
        out.append((str(entry_id), dict(fields or {})))
    return out


def stream_entries(reply: Any) -> list[Entry]:
    """All entries of an XREAD/XREADGROUP reply (`[[stream, entries], ...]`), in stream order."""
    out: list[Entry] = []
    for _stream, items in reply or []:
        out.extend(entries(items))
    return out


def outcomes(items: Sequence[Entry]) -> list[Outcome]:
    """Outcomes from outcome entries, `outcome_id` set to the entry id (what `ack_outcomes` needs)."""
    return [
        Outcome.from_dict(orjson.loads(fields[OUTCOME_FIELD]), outcome_id=entry_id)
        for entry_id, fields in items
        if OUTCOME_FIELD in fields
    ]


def events_json(events: Sequence[JobEvent]) -> str:
    return dumps([event.to_dict() for event in events])


def events(items: Sequence[Entry]) -> list[JobEvent]:
    batch: list[JobEvent] = []
    for _entry_id, fields in items:
        if EVENTS_FIELD in fields:
            batch.extend(JobEvent.from_dict(data) for data in orjson.loads(fields[EVENTS_FIELD]))
    return batch


def dead_letter(raw: str | bytes) -> tuple[JobMessage, int]:
    """A dead-letter record's message and the number of its last attempt."""
    record = orjson.loads(raw)
    return JobMessage.from_dict(record["job"]), int(record["attempts"])
