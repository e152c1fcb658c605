"""The rate-limit storage contract: per-key limits, the admission decision, and the store protocol.

The gateway asks a `LimitStore` to admit each request before it is queued, and settles it when the
request ends. Two implementations keep the same rules: `MemoryLimitStore` (embedded mode, one
process) and `RedisLimitStore` (cluster mode: any number of gateway replicas enforce one limit,
because each decision is one server-side step on the Redis clock; docs/architecture.md §6).

What counts, and when (the rules both stores follow):

* **Requests** (`rpm`): a request counts from the moment it is admitted, for `WINDOW_S`, whatever
  happens to it afterwards (answered, failed, cancelled: OpenAI also counts failed requests).
  A request the limiter refuses counts for nothing — a client retrying against a full window
  does not push its own window further out.
* **Tokens** (`tpm`): admission reserves the request's token estimate (prompt + max output) at
  the admission time; `settle` replaces the reservation by the tokens actually used, keeping the
  admission time, so an overestimate stops counting at once and an underestimate is charged in
  full. A request that is never settled (`release`, or a gateway that died) keeps its reservation
  until it leaves the window. A settle that comes after the reservation left the window changes
  nothing: the window is about the last `WINDOW_S`, and that request's minute is over.
* **Concurrency** (`max_concurrency`): a slot is held from admission until `settle`/`release`,
  or until its lease (`slot_ttl_s`, default 900 s) runs out, so a crashed gateway cannot hold a
  slot forever.
* Admission is all-or-nothing: every limit is checked first, then everything is consumed
  together, or nothing is.
* A window is kept only for a limit that is set: an unlimited key costs no storage, and a limit
  that is newly set starts counting from then.
* Request ids must be unique per request. An `admit` repeated with an id the store still knows
  (a retry after a timeout, when the first call may have run) is answered "allowed" and consumes
  nothing more.

Reset and retry times (for `x-ratelimit-reset-*` and `Retry-After`):

* `reset_requests_s` / `reset_tokens_s`: time until the oldest request (the oldest one holding
  tokens) leaves the window, i.e. until `remaining_*` next grows; 0 when the window is empty.
* `retry_after_s` when refused, for the refused limit: requests — until enough of the oldest
  requests leave that one more fits (the oldest one when the window is exactly full); tokens —
  until enough reserved tokens leave the window that this request's tokens fit; concurrency —
  when a slot frees cannot be known (any in-flight request may end at any moment), so it is
  `CONCURRENCY_RETRY_S`, or the earliest lease expiry when that is sooner. When several limits
  refuse, `reason` names the one with the longest wait and `retry_after_s` is that wait (every
  limit must have room). `math.inf` means "never with these limits": a limit of 0, or a request
  whose tokens exceed `tpm` on their own (the gateway should answer that as a request too large
  for the key rather than ask the client to retry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# The rolling window of `rpm` and `tpm`.
WINDOW_S = 60.0
# The retry hint when refused for concurrency: slots free when requests end, which cannot be predicted.
CONCURRENCY_RETRY_S = 1.0
# Concurrency slot lease: a slot not settled or released by then is freed (its gateway is presumed dead).
DEFAULT_SLOT_TTL_S = 900.0

Reason = Literal["requests", "tokens", "concurrency"]


class LimitUnavailable(Exception):
    """The limit store cannot be reached or did not answer in time.

    Callers fail closed (503 with Retry-After): a request that cannot be checked is not served.
    The message names the operation and the error class only, never the store's URL.
    """


@dataclass(frozen=True, slots=True)
class Limits:
    """One key's limits; `None` means unlimited, 0 means nothing is admitted."""

    rpm: int | None = None  # requests per rolling WINDOW_S
    tpm: int | None = None  # tokens per rolling WINDOW_S (reserved at admission, settled to actual)
    max_concurrency: int | None = None  # requests admitted and not yet settled or released

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or None")

    @property
    def windowed(self) -> bool:
        """True when requests must be recorded in the rolling window (a rate limit is set)."""
        return self.rpm is not None or self.tpm is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to `admit`/`peek`, with what the OpenAI rate-limit headers need.

    `remaining_*` is what is left after this request when it was admitted, and what is left now
    when it was refused (or for `peek`). The `*_requests`/`*_tokens` fields are `None` when that
    limit is not set. See the module docstring for the reset and retry times.
    """

    allowed: bool
    reason: Reason | None  # the refused limit (None when allowed)
    retry_after_s: float  # when refused: time until the refused limit has room (≥ 0, inf = never)
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float | None


class LimitStore(Protocol):
    """Where the limits' windows and slots live (see the module docstring for the rules).

    Every method may raise `LimitUnavailable`. If `admit` fails or is cancelled, whether it took
    effect is unknown: `release` (idempotent, harmless for an unknown id) makes it harmless, so the
    gateway releases or settles in a `finally` that covers the `admit` call too.
    """

    async def admit(self, subject: str, limits: Limits, request_id: str, tokens: int) -> Decision:
        """Check every limit of `subject` and consume all of them for `request_id`, or none."""
        ...

    async def settle(self, subject: str, request_id: str, actual_tokens: int) -> None:
        """The request ended: its token reservation becomes `actual_tokens`, its slot is freed."""
        ...

    async def release(self, subject: str, request_id: str) -> None:
        """The request ended without a token count: free its slot, keep its reservation counted."""
        ...

    async def peek(self, subject: str, limits: Limits) -> Decision:
        """The state now, as `admit` of a one-token request would see it, consuming nothing."""
        ...

    async def close(self) -> None:
        """Release the store's connections."""
        ...
