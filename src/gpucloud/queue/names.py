"""Every Redis key, stream, channel and consumer group name the Redis queue uses (docs/architecture.md §4).

All names start with one configurable prefix, so several deployments (or test runs) can share a
Redis server and an operator can find, size or delete everything the queue owns with one
`SCAN MATCH {<prefix>}:*` (braces are plain characters in a match pattern). Nothing else in
the project spells a queue key by hand.

Variable parts (model names, reply channels, job ids) always come last, so a model name that
contains ':' cannot make two names collide.

Every name starts with the prefix as a Redis Cluster hash tag, `{gc}:…`, so on a cluster the whole
queue lives in one hash slot (docs/architecture.md §10). That is what lets it work unchanged there:
one lease script serves the classes of several models in order and writes dead-letter and
interrupted outcomes in the same step; `begin`, `publish` and `ack_outcomes` are transactions
over a job's progress, the outcomes and a reply stream; and the epoch must vanish together with
the jobs when the node holding them loses its data. On a single server the braces are just
characters. (The limit stores' keys, by contrast, spread over slots: `gpucloud.limits.names`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gpucloud.queue.protocol import PRIORITIES_HIGH_FIRST, Priority


@dataclass(frozen=True, slots=True)
class RedisNames:
    """The queue's names under `prefix` (default "gc")."""

    prefix: str = "gc"

    @property
    def root(self) -> str:
        """The prefix as a hash tag: every name below starts with it (see the module docstring)."""
        return "{" + self.prefix + "}"

    # The consumer group on every job stream; each worker agent reads as consumer `worker_id`, so
    # the group's pending list says which worker holds which delivery (leases, reclaim, fencing).
    WORKERS_GROUP: ClassVar[str] = "workers"
    # The consumer group on the outcomes stream; every gateway replica runs a finalizer in it, so
    # an outcome is written to the ledger even if the gateway that accepted the job is gone.
    FINALIZERS_GROUP: ClassVar[str] = "finalizers"

    def jobs(self, model: str, priority: Priority) -> str:
        """Stream of one model's jobs in one priority class.

        One stream per (model, class): a worker reads only the models it hosts, and the classes
        can be served in order without scanning past lower-priority entries. Never trimmed:
        an entry leaves only when acknowledged (complete, dead letter, interruption).
        """
        return f"{self.root}:jobs:{priority.value}:{model}"

    def model_jobs(self, model: str) -> tuple[str, ...]:
        """The model's job streams, highest class first (the order `lease` serves them in)."""
        return tuple(self.jobs(model, priority) for priority in PRIORITIES_HIGH_FIRST)

    def submitted(self, job_id: str, attempt_base: int) -> str:
        """Marker of a job put on the queue (at this attempt base): a second submit skips it. It
        lives until the job's deadline, past which the job could not start anyway."""
        return f"{self.root}:submitted:{job_id}:{attempt_base}"

    def outcomes(self) -> str:
        """Stream of attempt outcomes (worker → control plane's finalizers).

        One stream for all models: the finalizer is one consumer group over the whole cluster.
        Entries are deleted when acknowledged, never trimmed, so no outcome can be lost unread.
        """
        return f"{self.root}:outcomes"

    def events(self, reply_to: str) -> str:
        """Reply stream of one gateway process's channel (events for the clients it holds).

        One per channel rather than one per job: a single reader per process carried 3.1× the
        jobs/s (docs/architecture.md §4). Capped with MAXLEN ~ and an EXPIRE, because the reader of a gateway
        that died never comes back to consume it.
        """
        return f"{self.root}:events:{reply_to}"

    def progress(self, job_id: str) -> str:
        """Hash of a streamed job's progress: completion tokens published, prompt tokens, worker.

        Reclaim reads it to decide that a streamed job which already sent tokens to its client
        must be reported INTERRUPTED (and billed) instead of run again. Expires with the events.
        """
        return self.progress_prefix() + job_id

    def progress_prefix(self) -> str:
        """`progress(job_id)` without the job id: Lua builds the key once it has read the entry."""
        return f"{self.root}:progress:"

    def cancelled(self, job_id: str) -> str:
        """Marker that a job was cancelled, with a TTL.

        A worker about to start a job checks it (`begin`): a pub/sub message sent while
        that worker was not subscribed, or before it leased the job, would otherwise be missed.
        """
        return f"{self.root}:cancelled:{job_id}"

    def cancellations(self) -> str:
        """Pub/sub channel carrying the ids of cancelled jobs, so running jobs stop within a second."""
        return f"{self.root}:cancellations"

    def dead_jobs(self) -> str:
        """Hash job id → dead-lettered message and its attempt count, for `dead_letters`/`replay`."""
        return f"{self.root}:dead:jobs"

    def dead_order(self) -> str:
        """Sorted set of dead-lettered job ids scored by time, so operators list the oldest first."""
        return f"{self.root}:dead:order"

    def workers(self) -> str:
        """Hash worker id → its latest announcement (JSON with an expiry time), so gateways know
        which models have a live worker (503 instead of an endless wait when none does)."""
        return f"{self.root}:workers"

    def models_seen(self) -> str:
        """Hash model → when a worker last announced it: a model once served is "known" (503 while
        no worker is up) rather than unknown (404)."""
        return f"{self.root}:models"

    def epoch(self) -> str:
        """A random id set once (SET NX): if Redis loses its data, the id changes, and gateways
        re-enqueue the jobs the database still holds as queued or running."""
        return f"{self.root}:epoch"

    def lease(self, role: str) -> str:
        """Who holds `role` (e.g. exporting cluster-wide metrics), with an expiry: one holder among
        all gateways, taken over by another when the holder stops renewing."""
        return f"{self.root}:lease:{role}"

    def keys_changed(self) -> str:
        """Pub/sub channel of API key ids changed (revoked, limits edited): every gateway drops
        that key from its authentication cache (`gpucloud.keycache`)."""
        return f"{self.root}:keys:changed"
