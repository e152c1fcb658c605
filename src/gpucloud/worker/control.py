"""`ControlPlane`: a worker's HTTP client for the control plane's worker endpoints.

It registers the worker with its inventory (retrying with backoff until the control plane
answers), then beats every `heartbeat_interval_s` with the agent's load and fresh GPU readings,
and applies what each answer says: `draining` drains or resumes the agent, `assignments` are the
deployment replicas it is to hold (`worker.replicas`), 404 (the control plane forgot the worker)
registers again. Each beat reports every replica's state and presents the session secret the
registration returned (`cluster.sessions`). A 401 — a bad or revoked worker token — is final:
`TokenRejected` ends the worker, which exits with status 2, and so is a 403 or 409 (the id
belongs to another token, or this session was replaced). The token is sent only in the
Authorization header, the session only in its header, and neither is logged. The bodies and the
answer are the worker API's (`gpucloud.wire`, built by `worker.reports`); the answer is read
ignoring fields this worker does not know, so a newer control plane may add some.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import httpx
from pydantic import ValidationError

from gpucloud.wire import SESSION_HEADER, HeartbeatIn, RegisterIn, WorkerOrders, read_orders
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.inventory import GpuProbe
from gpucloud.worker.reports import TokenRate, heartbeat, registration

log = logging.getLogger(__name__)

_BACKOFF_START_S = 0.2
_BACKOFF_MAX_S = 5.0


class Refused(Exception):
    """The control plane refused the worker for good: retrying cannot help."""


class TokenRejected(Refused):
    """The control plane refused the worker token (401)."""


class ControlPlane:
    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        labels: Mapping[str, str] | None = None,
        probe: GpuProbe | None = None,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,  # tests answer in-process
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=server_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._labels = dict(labels or {})
        self._probe = probe
        self.interval_s = 5.0
        self._rate = TokenRate()
        self._session = ""  # from the registration's answer

    @property
    def probe(self) -> GpuProbe | None:
        return self._probe

    async def close(self) -> None:
        await self._client.aclose()
        if self._probe is not None:
            self._probe.close()

    async def register(self, agent: WorkerAgent) -> WorkerOrders:
        """Register, retrying with backoff while the control plane cannot be reached or fails."""
        backoff = _BACKOFF_START_S
        while True:
            try:
                reply = await self._post("/api/workers/register", self._registration(agent))
                self._session = reply.session or ""
                self.interval_s = reply.heartbeat_interval_s
                log.info("worker %s registered (state %s)", agent.worker_id, reply.state.value)
                self._apply(agent, reply)
                return reply
            except (httpx.HTTPError, _ServerError) as exc:
                log.warning(
                    "worker %s: control plane unavailable (%s); retrying in %.1fs",
                    agent.worker_id,
                    _describe(exc),
                    backoff,
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def heartbeat(self, agent: WorkerAgent) -> None:
        """One beat; on 404 registers again. Transport errors propagate (the loop logs them)."""
        try:
            reply = await self._post(f"/api/workers/{agent.worker_id}/heartbeat", await self._beat(agent))
        except _NotRegistered:
            log.warning("worker %s: unknown to the control plane; registering again", agent.worker_id)
            await self.register(agent)
            return
        self._apply(agent, reply)

    async def run(self, agent: WorkerAgent) -> None:
        """Beat forever; returns only by raising `Refused` (such as `TokenRejected`)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.heartbeat(agent)
            except (httpx.HTTPError, _ServerError) as exc:
                log.warning("worker %s: heartbeat failed: %s", agent.worker_id, _describe(exc))

    async def final_heartbeat(self, agent: WorkerAgent) -> None:
        """The last beat of a stopping worker, best effort: it is leaving anyway."""
        try:
            await self._post(f"/api/workers/{agent.worker_id}/heartbeat", await self._beat(agent))
        except (httpx.HTTPError, _ServerError, _NotRegistered, Refused) as exc:
            log.warning("worker %s: final heartbeat failed: %s", agent.worker_id, _describe(exc))

    def _apply(self, agent: WorkerAgent, reply: WorkerOrders) -> None:
        if reply.draining:
            agent.drain()
        else:
            agent.undrain()
        agent.apply_assignments(reply.assignments)

    async def _post(self, path: str, body: RegisterIn | HeartbeatIn) -> WorkerOrders:
        headers = {SESSION_HEADER: self._session} if self._session else None
        response = await self._client.post(path, json=body.model_dump(mode="json"), headers=headers)
        if response.status_code == 401:
            raise TokenRejected("the control plane rejected the worker token (401)")
        if response.status_code == 404 and path.endswith("/heartbeat"):
            raise _NotRegistered()
        if response.status_code >= 500:
            raise _ServerError(f"HTTP {response.status_code}")
        if response.status_code != 200:
            # A 4xx other than those is a bug or a version mismatch: say what the server said.
            raise Refused(
                f"the control plane refused the request: HTTP {response.status_code} {response.text[:300]}"
            )
        return read_orders(response.content)

    def _registration(self, agent: WorkerAgent) -> RegisterIn:
        try:
            return registration(agent, self._labels, self._probe)
        except ValidationError as exc:
            raise _invalid("registration", exc) from None

    async def _beat(self, agent: WorkerAgent) -> HeartbeatIn:
        try:
            return await heartbeat(agent, self._rate, self._probe)
        except ValidationError as exc:
            raise _invalid("heartbeat", exc) from None


class _ServerError(Exception):
    """A 5xx from the control plane: worth retrying."""


class _NotRegistered(Exception):
    """404 on a heartbeat: the control plane does not know this worker (any more)."""


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _invalid(what: str, exc: ValidationError) -> Refused:
    # The control plane would refuse such a body (400), and sending it again cannot help: this
    # worker's own readings break the API's limits. Say which, as the control plane would have.
    return Refused(f"the worker's {what} is not valid: {exc}")
