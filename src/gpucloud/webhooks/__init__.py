"""Signed webhooks: endpoints of a key or of its organisation (`WebhookStore`), deliveries made
from outbox events and sent with retries by one leader (`WebhookSender`), Standard Webhooks
signatures (`signing`), and the SSRF guard on every outbound URL (`ssrf`)."""

from gpucloud.webhooks.sender import WebhookSender
from gpucloud.webhooks.ssrf import UnsafeTarget, check_url
from gpucloud.webhooks.store import NewEndpoint, WebhookStore

__all__ = [
    "NewEndpoint",
    "UnsafeTarget",
    "WebhookSender",
    "WebhookStore",
    "check_url",
]
