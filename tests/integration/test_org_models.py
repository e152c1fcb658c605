"""An organisation's `allowed_models` hold for every key it owns, with the official SDK: the
model list, chat completions, the Responses API and batch lines refuse a model the organisation
does not allow (403 `model_not_allowed`, as a key's own `allowed_models` does), and a change of the
organisation's list reaches its keys at once (their cached entries are dropped)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.batch_support import BatchInput, read_jsonl, start_batch, wait_for_batch
from tests.conftest import MODEL, create_key
from tests.integration.accounts_support import auth, create_org
from tests.integration.test_openai_api import assert_envelope
from tests.support import Server


def _org(server: Server, allowed: list[str] | None) -> str:
    org_id = create_org(server, "models")
    _allow(server, org_id, allowed)
    return org_id


def _allow(server: Server, org_id: str, allowed: list[str] | None) -> None:
    r = httpx.patch(
        f"{server.base_url}/api/orgs/{org_id}",
        json={"allowed_models": allowed},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["allowed_models"] == allowed


def _chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)


def test_the_organisation_list_binds_its_keys(server: Server) -> None:
    org_id = _org(server, ["another-model"])
    key = str(create_key(server, org_id=org_id)["key"])
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    assert MODEL not in [m.id for m in client.models.list()]
    with pytest.raises(openai.PermissionDeniedError) as chat:
        _chat(client)
    assert chat.value.code == "model_not_allowed"
    assert "organisation" in str(chat.value.message)
    with pytest.raises(openai.PermissionDeniedError) as response:
        client.responses.create(model=MODEL, input="hi", max_output_tokens=2)
    assert response.value.code == "model_not_allowed"
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        }
        for i in range(2)
    ]
    batch = wait_for_batch(client, start_batch(client, BatchInput(lines, set())).id)
    assert batch.request_counts is not None
    assert batch.request_counts.failed == 2
    errors = read_jsonl(client, batch.error_file_id)
    assert {e["response"]["body"]["error"]["code"] for e in errors} == {"model_not_allowed"}

    _allow(server, org_id, [MODEL])  # the key's cached entry is dropped: the next call sees it
    _chat(client)
    client.responses.create(model=MODEL, input="hi", max_output_tokens=2)
    _allow(server, org_id, None)
    _chat(client)


def test_the_key_and_the_organisation_both_must_allow(server: Server) -> None:
    org_id = _org(server, [MODEL])
    key = str(create_key(server, org_id=org_id, allowed_models=["another-model"])["key"])
    refused = httpx.post(
        f"{server.v1}/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers=auth(key),
        timeout=10,
    )
    assert_envelope(refused, 403, param="model")
    assert "This API key is not allowed" in refused.json()["error"]["message"]
    bad = httpx.patch(
        f"{server.base_url}/api/orgs/{org_id}",
        json={"allowed_models": "everything"},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert_envelope(bad, 400, param="allowed_models")
