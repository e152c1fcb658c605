"""The audit middleware: every state-changing management call appends one audit row.

A call is audited when its method changes state (POST, PUT, PATCH, DELETE) and its path is under
`/api/` — except the worker endpoints (`register`, `heartbeat`: a machine reporting, every few
seconds, not a management action). The row names the route's template as the action
(`DELETE /api/keys/{key_id}`), the path's ids (or what the handler names in
`scope["state"]["audit_target"]` / `["audit_org"]`, e.g. a new key's id and organisation) as the
target, the caller's key or user id as the actor, the status, the client IP and the request id —
never a body, a header or a secret.

The row is written before the response's last body part goes out, so a client that has its
answer finds the row. Sign-in failures (401, 429) are recorded like every other call.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpucloud.accounts.audit import AuditRecord

log = logging.getLogger(__name__)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOT_AUDITED = frozenset({"/api/workers/register", "/api/workers/{worker_id}/heartbeat"})


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_audited(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                await self._record(scope, status)
            await send(message)

        await self.app(scope, receive, send_audited)

    async def _record(self, scope: Scope, status: int) -> None:
        route = getattr(scope.get("route"), "path_format", None)
        if route in _NOT_AUDITED:
            return
        state = scope.get("state", {})
        facts = state.get("facts")
        params: dict[str, object] = scope.get("path_params") or {}
        target = state.get("audit_target") or "/".join(str(v) for v in params.values()) or None
        client = scope.get("client")
        entry = AuditRecord(
            actor=getattr(facts, "key_id", None) or "anonymous",
            action=f"{scope['method']} {route or scope['path']}",
            target=target,
            org_id=state.get("audit_org") or params.get("org_id"),  # type: ignore[arg-type]
            status=status,
            client_ip=client[0] if client else None,
            request_id=str(state.get("request_id", "")),
        )
        try:
            await scope["app"].state.accounts.audit.record(entry)
        except Exception:  # the call already happened: log the loss, never turn it into a 500
            log.exception("audit row not written for %s", entry.action)
