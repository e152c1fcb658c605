"""Every Redis key the limit and budget stores use (docs/architecture.md §4: names live in one module).

All keys sit under `<prefix>:limits:`, next to the queue's keys (`{<prefix>}:…`), so an
operator can find, size or delete what the limiters own with one `SCAN MATCH <prefix>:limits:*`.
Every key carries a TTL: a subject that stops sending vanishes from Redis on its own.

The variable part comes last, so a subject containing ':' cannot make two keys collide. Budget
keys have two variable parts (period and subject); the period is preceded by its length, which
keeps "a:b" + "c" and "a" + "b:c" apart.

Redis Cluster (docs/architecture.md §10): each script touches the keys of one subject, so every
key of a subject carries the same hash tag, `{<tag>}`, made from the subject alone: one subject's
keys share a slot and different subjects spread over the cluster. The tag is a digest of the
subject rather than the subject itself, because a subject may contain braces, which would end or
empty a tag; the subject itself still comes last, so keys stay readable and collision-free.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def slot_tag(subject: str) -> str:
    """The hash tag of `subject`'s keys: 12 hex digits of its BLAKE2b digest, in braces."""
    return "{" + hashlib.blake2b(subject.encode(), digest_size=6).hexdigest() + "}"


@dataclass(frozen=True, slots=True)
class LimitNames:
    """The limiters' key names under `prefix` (default "gc", the same prefix as the queue's)."""

    prefix: str = "gc"

    def window(self, subject: str) -> str:
        """Sorted set: request id → admission time (µs, Redis clock), the rolling request log.

        Its size after trimming is the exact request count of the last window (rpm), and its order
        says when the oldest requests leave (reset and retry times, and which tokens expire).
        Kept only while `rpm` or `tpm` is set; expires one window plus a margin after the last
        admission, when every entry in it has left the window anyway.
        """
        return f"{self.prefix}:limits:{slot_tag(subject)}:window:{subject}"

    def tokens(self, subject: str) -> str:
        """Hash next to `window`: "r:<request id>" → tokens counted for that request (reserved,
        then settled to the actual count), and "total" → their sum.

        The running total makes the tpm check O(1) instead of a sum over the window; ids carry
        the "r:" mark so that no request id can be taken for "total". Same lifetime as `window`.
        """
        return f"{self.prefix}:limits:{slot_tag(subject)}:tokens:{subject}"

    def slots(self, subject: str) -> str:
        """Sorted set: request id → lease expiry (µs), the concurrency slots held.

        Scored by expiry rather than admission so one ZREMRANGEBYSCORE drops the slots of a
        gateway that died without releasing them. Kept only while `max_concurrency` is set;
        expires a slot lease plus a margin after the last admission.
        """
        return f"{self.prefix}:limits:{slot_tag(subject)}:slots:{subject}"

    def budget(self, subject: str, period: str) -> str:
        """Hash of one (subject, period) budget: "spent" (initialised from the usage ledger, then
        the settled actual amounts), "reserved" (the sum of open reservations) and
        "r:<request id>" → each open reservation.

        Created with SET-NX semantics from the caller's baseline when missing (a new period, or
        Redis lost its data), and lives for the caller's `ttl_s`, i.e. until its period is over.
        """
        return f"{self.prefix}:limits:{slot_tag(subject)}:budget:{len(period)}:{period}:{subject}"

    def budget_holds(self, subject: str, period: str) -> str:
        """Sorted set: request id → reservation expiry (µs), the open reservations of `budget`.

        Lets one ZRANGEBYSCORE find the reservations of gateways that died without settling;
        they are then counted as spent in full (the job may well have run). Expires with `budget`.
        """
        return f"{self.prefix}:limits:{slot_tag(subject)}:budget-holds:{len(period)}:{period}:{subject}"

    def login_failures(self, subject: str) -> str:
        """Sorted set: failure id → time (µs, Redis clock), the wrong passwords of one account or
        client IP (`subject` is a digest) within the login throttle's window
        (gpucloud.accounts.throttle); expires one window after the last failure."""
        return f"{self.prefix}:limits:{slot_tag(subject)}:login-failures:{subject}"
