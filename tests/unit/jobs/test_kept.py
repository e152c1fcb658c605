"""Results too large for a job's row: the finalizer's `keep` writes them to object storage and marks
the outcome, `load` puts them back (a missing object reads as a result not kept), and pruning old
results deletes their objects with them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
from sqlalchemy import update

from gpucloud.db import Database, Job, JobStatus
from gpucloud.db.models import utcnow
from gpucloud.jobs import EMBEDDINGS_OMITTED, KEPT_AT, JobStore, KeptResults, NewJob, new_job_id
from gpucloud.jobs.fence import result_of
from gpucloud.jobs.kept import MAX_ROW_CHARS, object_key
from gpucloud.keys import KeyService, NewKey
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.queue.messages import Choice, Outcome, OutcomeStatus
from gpucloud.reconciler import Reconciler
from gpucloud.storage import LocalStore

HUGE = [Choice(0, embedding_base64="A" * (MAX_ROW_CHARS + 4)), Choice(1, embedding_base64="QUJD")]


def _outcome(choices: list[Choice], status: OutcomeStatus = OutcomeStatus.COMPLETED) -> Outcome:
    return Outcome(job_id="job_x", attempt=2, status=status, choices=choices, prompt_tokens=7)


async def test_keep_writes_a_large_result_and_the_row_names_it(tmp_path: Path) -> None:
    kept = KeptResults(LocalStore(tmp_path))
    small, failed, large = _outcome(HUGE[1:]), _outcome(HUGE, OutcomeStatus.FAILED), _outcome(HUGE)
    await kept.keep([small, failed, large])
    assert (small.kept_at, failed.kept_at) == ("", "")  # fits its row / nothing to keep
    assert large.kept_at == object_key("job_x", 2)
    row = result_of(large)
    assert row == {"choices": [], "prompt_tokens": 7, "completion_tokens": 0, KEPT_AT: large.kept_at}
    loaded = await kept.load(row)
    assert loaded == {"choices": msgspec.to_builtins(HUGE), "prompt_tokens": 7, "completion_tokens": 0}
    assert await kept.load(result_of(small) or {}) == result_of(small)  # a row that holds its result


async def test_a_missing_object_reads_as_a_result_not_kept(tmp_path: Path) -> None:
    kept = KeptResults(LocalStore(tmp_path))
    row = {"choices": [], "prompt_tokens": 1, KEPT_AT: "results/job_gone/1"}
    assert (await kept.load(row))[EMBEDDINGS_OMITTED] is True


async def test_pruning_old_results_deletes_their_objects(db: Database, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    kept = KeptResults(store)
    key_id = (await KeyService(db).create(NewKey(name="k")))[0].id
    old, recent = new_job_id(), new_job_id()
    for job_id, age in ((old, timedelta(hours=2)), (recent, timedelta(0))):
        outcome = Outcome(job_id=job_id, attempt=1, status=OutcomeStatus.COMPLETED, choices=HUGE)
        await kept.keep([outcome])
        await JobStore(db).create(NewJob(job_id, key_id, "m", "embedding", "low", False, {"n": 1}, "r"))
        async with db.transaction() as connection:
            await connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    status=JobStatus.COMPLETED.value, finished_at=utcnow() - age, result=result_of(outcome)
                )
            )
    await Reconciler(db, MemoryJobQueue(), result_ttl_s=3600, kept=kept).prune_results()
    assert not (tmp_path / "objects" / object_key(old, 1)).exists()
    assert (tmp_path / "objects" / object_key(recent, 1)).exists()
    rows = {job_id: await JobStore(db).load(job_id) for job_id in (old, recent)}
    pruned, kept_row = rows[old], rows[recent]
    assert pruned is not None
    assert pruned.result is None
    assert kept_row is not None
    assert kept_row.result is not None
