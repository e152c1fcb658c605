"""How the Redis queue's messages sit in stream entries, and how replies are read back.

Messages are encoded by the queue's one codec (`gpucloud.queue.codec`, msgspec JSON):

* job entry: field `job` = a `JobMessage` (Lua reads `job_id`, `stream`, `attempt_base`,
  `reply_to`, `model` and `unrecorded` from it);
* outcome entry: field `o` = an `Outcome` (Lua writes DEAD and INTERRUPTED ones itself, and
  splices the stored job JSON into them);
* event entry: field `e` = a JSON list of `JobEvent`s, one entry per `publish` call, so a batch
  of token deltas costs one XADD;
* dead letter: hash value `{"attempts", "at", "job"}` (`codec.DeadLetter`) written by the lease
  script.

Replies are checked as they are unpacked: a reply of an unexpected shape is a bug or a foreign
writer, and fails here with a clear `QueueError` instead of deep inside a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpucloud.queue.codec import Codec
from gpucloud.queue.protocol import JobEvent, JobMessage, Lease, Outcome, QueueError

JOB_FIELD = "job"
OUTCOME_FIELD = "o"
EVENTS_FIELD = "e"

# A stream entry as redis-py returns it with decode_responses: (id, {field: value}).
Entry = tuple[str, dict[str, str]]


def leases_from_script(codec: Codec, worker_id: str, flat: Sequence[Any]) -> list[Lease]:
    """Leases from the lease script's flat `{id, job JSON, delivery count, ...}` list."""
    leases: list[Lease] = []
    for i in range(0, len(flat) - 2, 3):
        entry_id, raw, deliveries = str(flat[i]), str(flat[i + 1]), int(flat[i + 2])
        job = codec.job(raw)
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


def outcomes(codec: Codec, items: Sequence[Entry]) -> list[Outcome]:
    """Outcomes from outcome entries, `outcome_id` set to the entry id (what `ack_outcomes` needs)."""
    return [
        codec.outcome(fields[OUTCOME_FIELD], outcome_id=entry_id)
        for entry_id, fields in items
        if OUTCOME_FIELD in fields
    ]


def events(codec: Codec, items: Sequence[Entry]) -> list[JobEvent]:
    batch: list[JobEvent] = []
    for _entry_id, fields in items:
        if EVENTS_FIELD in fields:
            batch.extend(codec.events(fields[EVENTS_FIELD]))
    return batch


def dead_letter(codec: Codec, raw: str | bytes) -> tuple[JobMessage, int]:
    """A dead-letter record's message and the number of its last attempt."""
    record = codec.dead_letter(raw)
    return record.job, record.attempts
