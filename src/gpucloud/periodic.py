"""`periodic`: a `Background` task that runs one round every few seconds for as long as it lives.

The audit retention and the webhook sender work in rounds on a lease; a round that fails — the
queue or the database unreachable, or a fault in one round's data — is logged and the next round
comes on time, since one bad round must not end the loop (and with it every later round) for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.queue.protocol import QueueError

log = logging.getLogger(__name__)


def periodic(name: str, step: Callable[[], Awaitable[object]], every_s: float) -> Background:
    """A task named `name` that awaits `step()` every `every_s` seconds (start it, close it)."""

    async def forever() -> None:
        while True:
            try:
                await step()
            except QueueError as exc:
                log.warning("%s: queue unavailable: %s", name, exc)
            except SQLAlchemyError as exc:
                log.warning("%s: database unavailable: %s", name, type(exc).__name__)
            except Exception:
                log.exception("%s: round failed", name)
            await asyncio.sleep(every_s)

    return Background(name, forever)
