"""The one codec of the queue's messages: msgspec JSON, with a typed decoder per message.

Both backends use the types of `queue.messages`; the Redis backend stores them with this codec, the
in-process one passes the objects themselves (nothing to encode within one process). Decoding
checks the types once, at the boundary: a stored message of the wrong shape fails here with
`QueueError`, not deep inside a worker. Requests are not validated again: the gateway validated
them (docs/architecture.md §12).

Encoders and decoders are built once per `Codec` (msgspec compiles them for the types), which the
queue holds; nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import msgspec

from gpucloud.queue.messages import JobEvent, JobMessage, Outcome, WorkerInfo
from gpucloud.queue.protocol import QueueError

T = TypeVar("T")


class CodecError(QueueError):
    """A stored message that does not decode as its type (a bug, or a foreign writer)."""


class DeadLetter(msgspec.Struct):
    """A dead-lettered job as stored (the lease script writes it; `attempts` is its last attempt)."""

    attempts: int
    at: float
    job: JobMessage


class WorkerEntry(WorkerInfo):
    """A worker's announcement as stored: its fields, and when it stops counting."""

    expires_at: float = 0.0


class Codec:
    """Typed JSON encoders and decoders for every message that is stored (see module docstring)."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._job = msgspec.json.Decoder(JobMessage)
        self._outcome = msgspec.json.Decoder(Outcome)
        self._events = msgspec.json.Decoder(list[JobEvent])
        self._dead = msgspec.json.Decoder(DeadLetter)
        self._worker = msgspec.json.Decoder(WorkerEntry)

    def encode(self, message: msgspec.Struct | Sequence[msgspec.Struct]) -> bytes:
        return self._encoder.encode(message)

    def encode_str(self, message: msgspec.Struct | Sequence[msgspec.Struct]) -> str:
        """As `encode`, as text (what a Lua script's ARGV and stream fields hold)."""
        return self._encoder.encode(message).decode()

    def job(self, raw: str | bytes) -> JobMessage:
        return _decode(self._job, raw)

    def outcome(self, raw: str | bytes, outcome_id: str = "") -> Outcome:
        outcome = _decode(self._outcome, raw)
        outcome.outcome_id = outcome_id
        return outcome

    def events(self, raw: str | bytes) -> list[JobEvent]:
        return _decode(self._events, raw)

    def dead_letter(self, raw: str | bytes) -> DeadLetter:
        return _decode(self._dead, raw)

    def worker_entry(self, worker: WorkerInfo, expires_at: float) -> bytes:
        return self._encoder.encode(WorkerEntry(**msgspec.structs.asdict(worker), expires_at=expires_at))

    def worker(self, raw: str | bytes) -> tuple[WorkerInfo, float]:
        """A stored announcement and when it expires."""
        entry = _decode(self._worker, raw)
        fields = msgspec.structs.asdict(entry)
        expires_at = fields.pop("expires_at")
        return WorkerInfo(**fields), expires_at


def _decode(decoder: msgspec.json.Decoder[T], raw: str | bytes) -> T:
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CodecError(f"a stored queue message does not decode: {exc}") from exc
