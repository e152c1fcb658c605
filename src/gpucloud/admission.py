"""Admission: a key's rate limits, token quota and money budget, checked and consumed before its
job is queued, and settled to what the job really used when it ends (docs/architecture.md §6).

* Rate limits (`LimitStore`): requests and tokens per rolling minute and concurrent requests, one
  atomic step for all three. Tokens reserved = prompt tokens (counted with the gateway's
  tokenizer) + `n` × `max_tokens` (or `default_reserve_tokens`). A refusal consumes nothing; an
  admitted request counts toward the request limit whatever happens to it (as OpenAI's do).
* Budgets (`BudgetStore`): a token quota and a budget in micro-dollars per period ("daily",
  "monthly", or the key's lifetime), reserved at admission with the same worst case, so that
  concurrent requests cannot overshoot. A period's counter starts from the ledger's spend.
* Settling: the finalizer that ends the job calls `settle` with the billed usage, so a streamed,
  cancelled, asynchronous or orphaned request is settled the same way by whichever gateway ends it.
  A store that is down fails closed: 503 with Retry-After, never an unlimited pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from gpucloud.errors import QuotaExceeded, RateLimited, Unavailable
from gpucloud.keys import OrgLimits, Principal
from gpucloud.limits import BudgetStore, Decision, Limits, LimitStore, LimitUnavailable
from gpucloud.settings import ModelPrice
from gpucloud.usage import UsageService

log = logging.getLogger(__name__)
_DAY_S = 86400.0
# How long a period's counter lives in the store past its period (then the ledger rebuilds it).
_COUNTER_TTL_S = {"daily": 2 * _DAY_S, "monthly": 33 * _DAY_S, None: 400 * _DAY_S}


def period_id(period: str | None, at: datetime) -> str:
    if period == "daily":
        return at.strftime("%Y-%m-%d")
    if period == "monthly":
        return at.strftime("%Y-%m")
    return "all"


def period_start(period: str | None, at: datetime) -> date | None:
    if period == "daily":
        return at.date()
    if period == "monthly":
        return at.date().replace(day=1)
    return None


class Pricing:
    """Model prices; a price per million tokens in USD is a price per token in micro-dollars."""

    def __init__(self, prices: Mapping[str, ModelPrice], default: ModelPrice) -> None:
        self._prices = dict(prices)
        self._default = default

    def cost_micros(self, model: str, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> int:
        price = self._prices.get(model, self._default)
        factor = price.batch_factor if batch else 1.0  # Batch API requests: the model's batch price
        return math.ceil(
            (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) * factor
        )


def duration(seconds: float) -> str:
    """OpenAI's reset format: "20ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"


def rate_headers(decision: Decision | None) -> dict[str, str]:
    """The `x-ratelimit-*` headers for the limits the key has (none for unlimited ones)."""
    headers: dict[str, str] = {}
    if decision is None:
        return headers
    if decision.limit_requests is not None:
        headers["x-ratelimit-limit-requests"] = str(decision.limit_requests)
        headers["x-ratelimit-remaining-requests"] = str(max(0, decision.remaining_requests or 0))
        headers["x-ratelimit-reset-requests"] = duration(decision.reset_requests_s or 0.0)
    if decision.limit_tokens is not None:
        headers["x-ratelimit-limit-tokens"] = str(decision.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, decision.remaining_tokens or 0))
        headers["x-ratelimit-reset-tokens"] = duration(decision.reset_tokens_s or 0.0)
    return headers


@dataclass(slots=True)
class Ticket:
    """What admission reserved for one job; kept on the job row until the job is settled."""

    key_id: str
    job_id: str
    model: str
    tokens: int
    cost_micros: int
    period: str  # budget period id, e.g. "2026-11" (fixed at admission)
    budget_period: str | None
    limited: bool  # the rate-limit store holds an entry for it
    quota: bool  # a token-quota hold exists
    budget: bool  # a money hold exists
    decision: Decision | None = None
    org: Ticket | None = None  # the same reservations for the key's organisation (`org:<id>`)

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies, and this runs for every request.
        found = {
            "key_id": self.key_id,
            "job_id": self.job_id,
            "model": self.model,
            "tokens": self.tokens,
            "cost_micros": self.cost_micros,
            "period": self.period,
            "budget_period": self.budget_period,
            "limited": self.limited,
            "quota": self.quota,
            "budget": self.budget,
        }
        if self.org is not None:
            found["org"] = self.org.to_dict()
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ticket:
        org = data.get("org")
        fields = {k: v for k, v in data.items() if k not in ("decision", "org")}
        return cls(**fields, org=cls.from_dict(org) if org else None)


def counts_tokens(principal: Principal) -> bool:
    """Whether admission needs the request's prompt tokens (a token limit, quota or budget of the
    key or of its organisation)."""
    if principal.org_limits is not None and counts_tokens(org_subject(principal)):
        return True
    return any(v is not None for v in (principal.tpm_limit, principal.token_quota, principal.budget_micros))


def org_subject(principal: Principal) -> Principal:
    """The key's organisation as a second subject of the same limits, named `org:<id>`."""
    org = principal.org_limits or OrgLimits(None, None, None, None, None)
    return Principal(
        key_id=f"org:{principal.org_id}",
        name="organisation",
        role="user",
        allowed_models=None,
        default_priority=principal.default_priority,
        max_priority=principal.max_priority,
        rpm_limit=org.rpm_limit,
        tpm_limit=org.tpm_limit,
        token_quota=org.token_quota,
        budget_micros=org.budget_micros,
        budget_period=org.budget_period,
    )


def _whose(principal: Principal) -> str:
    return "this organisation" if principal.key_id.startswith("org:") else "this API key"


def principal_limits(principal: Principal) -> Limits:
    return Limits(rpm=principal.rpm_limit, tpm=principal.tpm_limit, max_concurrency=principal.max_concurrency)


def _ticket(principal: Principal, model: str, job_id: str, tokens: int, cost: int, now: datetime) -> Ticket:
    return Ticket(
        key_id=principal.key_id,
        job_id=job_id,
        model=model,
        tokens=tokens,
        cost_micros=cost,
        period=period_id(principal.budget_period, now),
        budget_period=principal.budget_period,
        limited=principal_limits(principal).windowed or principal.max_concurrency is not None,
        quota=principal.token_quota is not None,
        budget=principal.budget_micros is not None,
    )


class Admission:
    def __init__(
        self,
        limits: LimitStore,
        budgets: BudgetStore,
        usage: UsageService,
        pricing: Pricing,
        *,
        default_reserve_tokens: int,
    ) -> None:
        self._limits = limits
        self._budgets = budgets
        self._usage = usage
        self.pricing = pricing
        self._default_reserve = default_reserve_tokens

    async def admit(
        self,
        principal: Principal,
        model: str,
        job_id: str,
        prompt_tokens: int,
        max_tokens: int | None,
        n: int,
    ) -> Ticket:
        completion = n * (max_tokens or self._default_reserve)
        now = datetime.now(UTC)
        cost = self.pricing.cost_micros(model, prompt_tokens, completion)
        ticket = _ticket(principal, model, job_id, prompt_tokens + completion, cost, now)
        try:
            await self._rate_limit(principal, ticket)
            await self._reserve_budgets(principal, ticket, now)
            if principal.org_limits is not None:
                ticket.org = await self._admit_org(principal, ticket, now)
        except LimitUnavailable:
            raise Unavailable(
                "Limits cannot be checked right now; retry later.", retry_after_s=5, code="limits_unavailable"
            ) from None
        return ticket

    async def _admit_org(self, principal: Principal, key_ticket: Ticket, now: datetime) -> Ticket:
        """The organisation's reservations, after the key's; refused, the key's are released."""
        org = org_subject(principal)
        ticket = _ticket(
            org, key_ticket.model, key_ticket.job_id, key_ticket.tokens, key_ticket.cost_micros, now
        )
        try:
            await self._rate_limit(org, ticket)
            await self._reserve_budgets(org, ticket, now)
        except (RateLimited, QuotaExceeded, LimitUnavailable):
            await self.abandon(key_ticket)
            raise
        return ticket

    async def _rate_limit(self, principal: Principal, ticket: Ticket) -> None:
        if not ticket.limited:
            return
        decision = await self._limits.admit(
            principal.key_id, principal_limits(principal), ticket.job_id, ticket.tokens
        )
        ticket.decision = decision
        if decision.allowed:
            return
        headers = rate_headers(decision)
        if math.isinf(decision.retry_after_s):
            headers["x-should-retry"] = "false"
            raise RateLimited(
                f"Request too large: it needs {ticket.tokens} tokens, more than {_whose(principal)}'s "
                f"limit of {decision.limit_tokens} tokens per minute.",
                retry_after_s=120,
                code="request_too_large",
                headers=headers,
            )
        raise RateLimited(
            f"Rate limit reached for {decision.reason} on {_whose(principal)}; retry after "
            f"{duration(decision.retry_after_s)}.",
            retry_after_s=decision.retry_after_s,
            headers=headers,
        )

    async def _reserve_budgets(self, principal: Principal, ticket: Ticket, now: datetime) -> None:
        ttl = _COUNTER_TTL_S[principal.budget_period]
        start = period_start(principal.budget_period, now)
        spent: list[tuple[int, int]] = []

        def baseline(index: int) -> Callable[[], Awaitable[int]]:
            async def load() -> int:
                if not spent:
                    spent.append(await self._usage.spent(principal.key_id, start))
                return spent[0][index]

            return load

        holds: list[str] = []
        checks = [
            ("tokens", principal.token_quota, ticket.tokens, 0),
            ("usd", principal.budget_micros, ticket.cost_micros, 1),
        ]
        for kind, cap, amount, index in checks:
            if cap is None:
                continue
            period = f"{kind}:{ticket.period}"
            ok, left = await self._budgets.reserve(
                principal.key_id, period, cap, amount, ticket.job_id, ttl, baseline(index)
            )
            if not ok:
                await self._undo(principal, ticket, holds)
                left_text = f"{left} tokens" if kind == "tokens" else f"${left / 1_000_000:.6f}"
                what = "token quota" if kind == "tokens" else "budget"
                whose = _whose(principal)
                raise QuotaExceeded(
                    f"You exceeded {whose}'s {what} for the period ({left_text} left; this request "
                    f"may need up to {amount if kind == 'tokens' else f'${amount / 1_000_000:.6f}'}).",
                    headers=rate_headers(ticket.decision),
                )
            holds.append(period)

    async def _undo(self, principal: Principal, ticket: Ticket, holds: list[str]) -> None:
        for period in holds:
            await self._budgets.settle(principal.key_id, period, ticket.job_id, 0)
        if ticket.limited:
            await self._limits.settle(principal.key_id, ticket.job_id, 0)

    async def settle(
        self, ticket: Ticket, prompt_tokens: int, completion_tokens: int, cost_micros: int
    ) -> None:
        """Replace the reservations by what the job used (idempotent); called once the job ended."""
        try:
            if ticket.limited:
                await self._limits.settle(ticket.key_id, ticket.job_id, prompt_tokens + completion_tokens)
            if ticket.quota:
                await self._budgets.settle(
                    ticket.key_id, f"tokens:{ticket.period}", ticket.job_id, prompt_tokens + completion_tokens
                )
            if ticket.budget:
                await self._budgets.settle(ticket.key_id, f"usd:{ticket.period}", ticket.job_id, cost_micros)
            if ticket.org is not None:
                await self.settle(ticket.org, prompt_tokens, completion_tokens, cost_micros)
        except LimitUnavailable as exc:
            # The holds expire by themselves (a budget hold then counts in full: never an overshoot).
            log.warning("admission: could not settle job %s: %s", ticket.job_id, exc)

    async def close(self) -> None:
        await self._limits.close()
        await self._budgets.close()

    async def abandon(self, ticket: Ticket) -> None:
        """The job never reached the queue: nothing was used."""
        await self.settle(ticket, 0, 0, 0)

    async def status(self, principal: Principal) -> dict[str, Any]:
        """Limits, use of the current window and what is left of the budgets (for GET /api/keys/{id})."""
        now = datetime.now(UTC)
        view: dict[str, Any] = {
            "window": None,
            "token_quota_remaining": None,
            "budget_usd_remaining": None,
            "period": period_id(principal.budget_period, now),
        }
        try:
            if principal_limits(principal).windowed:
                decision = await self._limits.peek(principal.key_id, principal_limits(principal))
                view["window"] = {
                    "remaining_requests": decision.remaining_requests,
                    "remaining_tokens": decision.remaining_tokens,
                    "reset_requests_s": decision.reset_requests_s,
                    "reset_tokens_s": decision.reset_tokens_s,
                }
            start = period_start(principal.budget_period, now)
            tokens, micros = await self._usage.spent(principal.key_id, start)
            ttl_base = [tokens, micros]
            for kind, cap, field, index in (
                ("tokens", principal.token_quota, "token_quota_remaining", 0),
                ("usd", principal.budget_micros, "budget_usd_remaining", 1),
            ):
                if cap is None:
                    continue

                async def base(i: int = index) -> int:
                    return ttl_base[i]

                left = await self._budgets.remaining(principal.key_id, f"{kind}:{view['period']}", cap, base)
                view[field] = left if kind == "tokens" else left / 1_000_000
        except LimitUnavailable:
            view["unavailable"] = True
        return view
