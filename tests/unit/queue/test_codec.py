"""The queue's codec: every message type survives encode → decode unchanged (a hypothesis property
over generated messages), stored jobs keep every field the Lua scripts read, outcomes written by
the lease script decode, and a malformed stored message fails as a `QueueError`."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucloud.engines.protocol import GenerationRequest, TokenLogprob, ToolCallDelta
from gpucloud.queue.codec import Codec, CodecError, DeadLetter
from gpucloud.queue.protocol import (
    Choice,
    DeltaEvent,
    ErrorEvent,
    FinalEvent,
    JobEvent,
    JobMessage,
    Lease,
    Outcome,
    OutcomeStatus,
    Priority,
    QueueError,
    StartedEvent,
    ToolCall,
    Unrecorded,
    WorkerInfo,
)

# JSON's values: text without lone surrogates (not UTF-8), finite floats, 64-bit integers.
text = st.text(st.characters(codec="utf-8"), max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False)
ints = st.integers(-(2**63), 2**63 - 1)
counts = st.integers(0, 2**31)
json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
documents = st.dictionaries(text, json_values, max_size=3)
optional = st.none

requests = st.builds(
    GenerationRequest,
    kind=st.sampled_from(["chat", "completion", "embedding"]),
    model=text,
    messages=optional() | st.lists(documents, max_size=3),
    prompt=optional() | text,
    input=optional() | st.lists(text, max_size=3),
    max_tokens=optional() | counts,
    stop=st.lists(text, max_size=3).map(tuple),
    n=st.integers(1, 8),
    temperature=optional() | floats,
    top_p=optional() | floats,
    seed=optional() | ints,
    user=optional() | text,
    extra=documents,
    tools=optional() | st.lists(documents, max_size=2),
    tool_choice=optional() | text | documents,
    parallel_tool_calls=optional() | st.booleans(),
    response_format=optional() | documents,
    logprobs=st.booleans(),
    top_logprobs=optional() | counts,
    presence_penalty=optional() | floats,
    frequency_penalty=optional() | floats,
    logit_bias=optional() | st.dictionaries(text, floats, max_size=3),
)
unrecorded = st.builds(Unrecorded, key_id=text, endpoint=text, admission=optional() | documents)
jobs = st.builds(
    JobMessage,
    job_id=text,
    model=text,
    priority=st.sampled_from(Priority),
    request=requests,
    reply_to=text,
    stream=st.booleans(),
    enqueued_at=floats,
    deadline=floats,
    request_id=text,
    attempt_base=counts,
    unrecorded=optional() | unrecorded,
)
leases = st.builds(Lease, job=jobs, attempt=counts, worker_id=text, token=text)
logprobs = st.builds(
    TokenLogprob,
    token=text,
    logprob=floats,
    bytes=st.lists(st.integers(0, 255), max_size=4),
    top=st.lists(st.tuples(text, floats, st.lists(st.integers(0, 255), max_size=4)), max_size=3),
)
pieces = st.builds(ToolCallDelta, index=counts, arguments=text, id=optional() | text, name=optional() | text)
choices = st.builds(
    Choice,
    index=counts,
    text=text,
    finish_reason=optional() | text,
    tool_calls=st.lists(
        st.builds(ToolCall, id=optional() | text, name=optional() | text, arguments=text), max_size=2
    ),
    logprobs=st.lists(logprobs, max_size=2),
    embedding_base64=optional() | text,
)
outcomes = st.builds(
    Outcome,
    job_id=text,
    attempt=counts,
    status=st.sampled_from(OutcomeStatus),
    reply_to=text,
    model=text,
    worker_id=text,
    choices=st.lists(choices, max_size=3),
    prompt_tokens=counts,
    completion_tokens=counts,
    ttft_ms=optional() | floats,
    duration_ms=optional() | floats,
    error=optional() | text,
    error_code=optional() | text,
    at=floats,
    stream=st.booleans(),
    outcome_id=text,
    job=optional() | jobs,
)
events: st.SearchStrategy[JobEvent] = st.one_of(
    st.builds(StartedEvent, job_id=text, attempt=counts, worker_id=text),
    st.builds(
        DeltaEvent,
        job_id=text,
        attempt=counts,
        index=counts,
        text=text,
        tokens=counts,
        finish_reason=optional() | text,
        prompt_tokens=counts,
        tool_calls=st.lists(pieces, max_size=2),
        logprobs=st.lists(logprobs, max_size=2),
    ),
    st.builds(
        FinalEvent,
        job_id=text,
        attempt=counts,
        choices=st.lists(choices, max_size=3),
        prompt_tokens=counts,
        completion_tokens=counts,
        latency_ms=floats,
    ),
    st.builds(
        ErrorEvent,
        job_id=text,
        attempt=counts,
        status=st.sampled_from(OutcomeStatus),
        error=optional() | text,
        error_code=optional() | text,
        prompt_tokens=counts,
        completion_tokens=counts,
        latency_ms=floats,
    ),
)
workers = st.builds(
    WorkerInfo,
    worker_id=text,
    models=st.lists(text, max_size=3),
    slots=counts,
    running=counts,
    at=floats,
    running_by_model=st.dictionaries(text, counts, max_size=3),
    capabilities=st.dictionaries(text, st.dictionaries(text, st.booleans(), max_size=3), max_size=2),
)

codec = Codec()


@settings(max_examples=60)
@given(jobs)
def test_job_round_trip(job: JobMessage) -> None:
    assert codec.job(codec.encode(job)) == job


@settings(max_examples=60)
@given(outcomes)
def test_outcome_round_trip(outcome: Outcome) -> None:
    # `outcome_id` is the queue's handle for the stored entry, given back by whoever reads it.
    assert codec.outcome(codec.encode_str(outcome), outcome.outcome_id) == outcome


@settings(max_examples=60)
@given(st.lists(events, max_size=4))
def test_event_batch_round_trip(batch: list[JobEvent]) -> None:
    assert codec.events(codec.encode(batch)) == batch


@settings(max_examples=40)
@given(jobs, counts, floats)
def test_dead_letter_round_trip(job: JobMessage, attempts: int, at: float) -> None:
    record = DeadLetter(attempts, at, job)
    assert codec.dead_letter(codec.encode(record)) == record


@settings(max_examples=40)
@given(workers, floats)
def test_worker_announcement_round_trip(worker: WorkerInfo, expires_at: float) -> None:
    assert codec.worker(codec.worker_entry(worker, expires_at)) == (worker, expires_at)


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [
        (requests, GenerationRequest),
        (unrecorded, Unrecorded),
        (leases, Lease),
        (choices, Choice),
        (pieces, ToolCallDelta),
        (logprobs, TokenLogprob),
    ],
)
def test_nested_types_round_trip(strategy: st.SearchStrategy[Any], kind: type[Any]) -> None:
    @settings(max_examples=40)
    @given(strategy)
    def check(value: Any) -> None:
        assert msgspec.json.decode(codec.encode(value), type=kind) == value

    check()


def test_a_stored_job_keeps_every_field_the_scripts_read() -> None:
    job = JobMessage("j", "m", Priority.LOW, GenerationRequest(kind="chat", model="m"), "gw")
    stored = orjson.loads(codec.encode(job))
    # The lease script does arithmetic on attempt_base and tests stream and unrecorded: a default
    # left out would be nil in Lua.
    assert {"job_id", "model", "reply_to", "stream", "attempt_base", "unrecorded"} <= set(stored)
    assert stored["request"] == {"kind": "chat", "model": "m"}  # defaults of a request are left out


def test_an_outcome_written_by_the_lease_script_decodes() -> None:
    job = JobMessage("j", "m", Priority.NORMAL, GenerationRequest(kind="completion", model="m"), "gw")
    # What `add_outcome` in queue/redis/scripts.py writes: cjson's fields, then the stored job spliced in.
    written = (
        '{"job_id":"j","attempt":3,"status":"dead","reply_to":"gw","model":"m","worker_id":"",'
        '"prompt_tokens":0,"completion_tokens":0,"at":1700000000.5,"error":"delivered 3 times",'
        '"error_code":"dead_lettered","job":' + codec.encode_str(job) + "}"
    )
    outcome = codec.outcome(written, "1-0")
    assert (outcome.status, outcome.attempt, outcome.choices, outcome.job) == (OutcomeStatus.DEAD, 3, [], job)
    assert outcome.outcome_id == "1-0"


@pytest.mark.parametrize("raw", ["not json", '{"job_id": 1}', '[{"kind": "nonsense", "job_id": "j"}]'])
def test_a_malformed_message_is_a_queue_error(raw: str) -> None:
    with pytest.raises(CodecError) as caught:
        codec.events(raw) if raw.startswith("[") else codec.job(raw)
    assert isinstance(caught.value, QueueError)
