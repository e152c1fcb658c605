"""Jobs in the database: the store (rows before queueing, reads), the fence (each job moves
forward once per attempt) and the finalizer (outcomes → one ending and one usage row per job)."""

from gpucloud.jobs.fence import Fence
from gpucloud.jobs.finalizer import Finalizer
from gpucloud.jobs.kept import EMBEDDINGS_OMITTED, KEPT_AT, KeptResults
from gpucloud.jobs.store import JobFilter, JobStore, NewJob, new_job_id

__all__ = [
    "EMBEDDINGS_OMITTED",
    "KEPT_AT",
    "Fence",
    "Finalizer",
    "JobFilter",
    "JobStore",
    "KeptResults",
    "NewJob",
    "new_job_id",
]
