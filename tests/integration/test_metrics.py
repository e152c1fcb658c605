"""`/metrics` after a known set of requests: parsed with Prometheus's own text parser, the counters
and histograms hold exactly what happened; only an admin key may read it. `/api/stats` agrees."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MODEL, create_key
from tests.support import Server, make_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own: counters start at zero and nobody else adds to them."""
    srv = make_server(Path(tmp_path_factory.mktemp("metrics")))
    srv.start()
    yield srv
    srv.stop()


def scrape(server: Server) -> Samples:
    r = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {server.admin_key}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_counters_and_histograms_are_exact(fresh: Server) -> None:
    client = openai.OpenAI(base_url=fresh.v1, api_key=fresh.admin_key, max_retries=0)
    completion_tokens = prompt_tokens = 0
    for _ in range(3):
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
        assert r.usage is not None
        completion_tokens += r.usage.completion_tokens
        prompt_tokens += r.usage.prompt_tokens
    for _ in range(2):
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "yo"}],
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.usage:
                completion_tokens += chunk.usage.completion_tokens
                prompt_tokens += chunk.usage.prompt_tokens
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=3)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=fresh.v1, api_key="gc_wrong", max_retries=0).models.list()
    time.sleep(0.2)  # the finalizer counts outcomes after its commit, just before it answers

    s = scrape(fresh)
    route = "/v1/chat/completions"
    assert value(s, "gpucloud_http_requests_total", route=route, method="POST", status="200") == 5
    assert value(s, "gpucloud_http_requests_total", route=route, method="POST", status="400") == 1
    assert value(s, "gpucloud_http_requests_total", route=route, method="POST", status="404") == 1
    assert value(s, "gpucloud_http_requests_total", route="/v1/models", method="GET", status="401") == 1
    assert value(s, "gpucloud_http_request_duration_seconds_count", route=route) == 7
    inference = {"model": MODEL, "endpoint": "chat.completions", "status": "200"}
    assert value(s, "gpucloud_inference_requests_total", stream="false", **inference) == 3
    assert value(s, "gpucloud_inference_requests_total", stream="true", **inference) == 2
    assert value(s, "gpucloud_job_outcomes_total", model=MODEL, status="completed") == 5
    assert value(s, "gpucloud_tokens_total", model=MODEL, kind="completion") == completion_tokens
    assert value(s, "gpucloud_tokens_total", model=MODEL, kind="prompt") == prompt_tokens
    for histogram in (
        "gpucloud_queue_wait_seconds",
        "gpucloud_time_to_first_token_seconds",
        "gpucloud_inter_token_latency_seconds",
    ):
        assert value(s, f"{histogram}_count", model=MODEL) == 5, histogram
    assert value(s, "gpucloud_job_duration_seconds_count", model=MODEL, status="completed") == 5
    # the cluster-wide gauges: this one process holds the leader lease (refreshed every 5 s)
    deadline = time.monotonic() + 8
    while value(s, "gpucloud_workers", state="live") != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        s = scrape(fresh)
    assert value(s, "gpucloud_workers", state="live") == 1
    assert value(s, "gpucloud_queue_depth", model=MODEL, priority="normal") == 0
    assert value(s, "gpucloud_model_workers", model=MODEL) == 1
    replicas = [k for k in s if k[0] == "gpucloud_replica_running_requests"]
    assert [dict(labels)["model"] for _, labels in replicas] == [MODEL]  # one replica: the local worker


def test_metrics_need_an_admin_key(fresh: Server) -> None:
    anonymous = httpx.get(f"{fresh.base_url}/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    user = str(create_key(fresh, name="not-admin")["key"])
    assert (
        httpx.get(f"{fresh.base_url}/metrics", headers={"Authorization": f"Bearer {user}"}).status_code == 403
    )
    assert (
        httpx.get(f"{fresh.base_url}/api/stats", headers={"Authorization": f"Bearer {user}"}).status_code
        == 403
    )


def test_stats_agree_with_the_ledger(fresh: Server) -> None:
    admin = {"Authorization": f"Bearer {fresh.admin_key}"}
    usage = httpx.get(f"{fresh.base_url}/api/usage", headers=admin).json()["totals"]
    time.sleep(2.1)  # past the stats cache
    stats = httpx.get(f"{fresh.base_url}/api/stats", headers=admin).json()
    assert len(stats["series"]) == 60
    assert sum(b["requests"] for b in stats["series"]) == usage["requests"]
    assert sum(b["completion_tokens"] for b in stats["series"]) == usage["completion_tokens"]
    assert stats["current"]["workers"] == 1
    assert stats["current"]["queue_depth"] == 0
    assert stats["series"][-1]["p50_latency_ms"] is not None


def test_model_labels_are_bounded_to_models_the_platform_serves(fresh: Server) -> None:
    """Finding 6 of the security review: unknown model names share one label, `other`."""
    client = openai.OpenAI(base_url=fresh.v1, api_key=fresh.admin_key, max_retries=0)
    secret_like = "gc_" + "S" * 49
    names = [f"made-up-{i}" for i in range(30)] + [secret_like]
    for name in names:
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
    text = httpx.get(f"{fresh.base_url}/metrics", headers={"Authorization": f"Bearer {fresh.admin_key}"}).text
    assert "made-up-" not in text
    assert secret_like not in text
    s = scrape(fresh)
    other = {"model": "other", "endpoint": "chat.completions", "stream": "false", "status": "404"}
    assert value(s, "gpucloud_inference_requests_total", **other) >= len(names)
    models = {dict(labels).get("model") for name, labels in s if name == "gpucloud_inference_requests_total"}
    assert models <= {MODEL, "other"}, models
