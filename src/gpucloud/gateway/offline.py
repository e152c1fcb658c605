"""`Offline`: the parts behind the Files, Batch and Webhooks APIs, built and started by the
gateway's lifespan next to the runtime (the batch feeder submits through the gateway's
`Inference`, so it cannot live in the runtime itself): object storage, files, batches and their
feeder, and the webhook sender."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gpucloud.batches import BatchFeeder, BatchStore
from gpucloud.files import FileService
from gpucloud.gateway.inference import Inference
from gpucloud.runtime import Runtime
from gpucloud.storage import ObjectStore
from gpucloud.webhooks import WebhookSender, WebhookStore


@dataclass
class Offline:
    store: ObjectStore
    files: FileService
    batches: BatchStore
    feeder: BatchFeeder
    webhooks: WebhookStore
    sender: WebhookSender

    @classmethod
    def build(cls, runtime: Runtime, inference: Inference) -> Offline:
        settings = runtime.settings
        store = runtime.objects  # the runtime's: its finalizer keeps large results there too
        files = FileService(runtime.db, store, settings.files)
        batches = BatchStore(runtime.db)
        feeder = BatchFeeder(
            db=runtime.db,
            store=batches,
            files=files,
            inference=inference,
            queue=runtime.queue,
            keys=runtime.keys,
            limits=settings.limits,
            settings=settings.batches,
            holder=runtime.instance_id,
            slots=runtime.registry.slots,
            kept=runtime.kept,
        )
        sender = WebhookSender(runtime.db, runtime.queue, runtime.instance_id, settings.webhooks)
        return cls(store, files, batches, feeder, WebhookStore(runtime.db), sender)

    async def start(self) -> None:
        await self.feeder.start()
        await self.sender.start()

    async def close(self) -> None:
        await self.sender.close()
        await self.feeder.close()  # the store is the runtime's, closed with it


async def get_offline(request: Request) -> Offline:
    offline: Offline = request.app.state.offline
    return offline
