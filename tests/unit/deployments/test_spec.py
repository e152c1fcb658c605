"""Deployment requests: names, engines, sources and autoscale/rollout bounds are checked, and GPU
memory is taken as given, zero for CPU engines, or estimated from a readable config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucloud.deployments.spec import DeploymentRequest, validate
from gpucloud.errors import InvalidRequest

# A Llama-shaped config of about 1.1 B parameters.
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "torch_dtype": "bfloat16",
}


def _models(tmp_path: Path) -> Path:
    model = tmp_path / "models" / "org" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "models" / "broken").mkdir()
    (tmp_path / "models" / "broken" / "config.json").write_text("{not json")
    return tmp_path / "models"


def _refused(request: DeploymentRequest, models: Path) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as refused:
        validate(request, models)
    return refused.value


@pytest.mark.parametrize("name", ["", " x", "-x", "a b", "a/../b", "x" * 201, "ü"])
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    assert _refused(DeploymentRequest(name=name, engine="simulated"), tmp_path).param == "name"


def test_good_names_and_the_simulated_engine_need_no_gpu(tmp_path: Path) -> None:
    checked = validate(DeploymentRequest(name="org/model-1.5:q4", engine="simulated"), tmp_path)
    assert (checked.gpu_memory_gb, checked.gpu_count, checked.estimated) == (0.0, 0, False)
    assert checked.request.source is None


def test_an_unknown_engine_or_a_missing_or_unsafe_source_is_refused(tmp_path: Path) -> None:
    assert _refused(DeploymentRequest(name="m", engine="vllm"), tmp_path).param == "engine"
    no_source = _refused(DeploymentRequest(name="m", engine="transformers"), tmp_path)
    assert (no_source.param, "needs a source" in no_source.message) == ("source", True)
    for unsafe in ("/etc", "../up", "a\\b", "~root"):
        request = DeploymentRequest(name="m", engine="transformers", source=unsafe, gpu_memory_gb=1)
        assert _refused(request, tmp_path).param == "source"


def test_the_source_is_normalised(tmp_path: Path) -> None:
    request = DeploymentRequest(name="m", engine="transformers", source="./org//tiny/", gpu_memory_gb=2)
    assert validate(request, tmp_path).request.source == "org/tiny"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"autoscale": {"min_replicas": 3, "max_replicas": 2}}, "autoscale.min_replicas"),
        ({"max_surge": 0, "max_unavailable": 0}, "max_surge"),
        ({"idle_unload_seconds": 60}, "idle_unload_seconds"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, object], param: str, tmp_path: Path) -> None:
    request = DeploymentRequest(name="m", engine="simulated", **fields)  # type: ignore[arg-type]
    assert _refused(request, tmp_path).param == param


def test_idle_unload_is_accepted_on_demand(tmp_path: Path) -> None:
    validate(
        DeploymentRequest(name="m", engine="simulated", on_demand=True, idle_unload_seconds=60), tmp_path
    )


def test_given_memory_is_kept_and_cpu_only_memory_is_zero(tmp_path: Path) -> None:
    given = validate(
        DeploymentRequest(name="m", engine="transformers", source="hub/x", gpu_memory_gb=7.5), tmp_path
    )
    assert (given.gpu_memory_gb, given.gpu_count, given.estimated) == (7.5, 1, False)
    simulated_gpu = validate(DeploymentRequest(name="m", engine="simulated", gpu_memory_gb=3), tmp_path)
    assert (simulated_gpu.gpu_memory_gb, simulated_gpu.gpu_count) == (3, 1)  # memory given: it takes a GPU
    cpu = validate(
        DeploymentRequest(name="m", engine="transformers", source="hub/x", gpu_count=0, gpu_memory_gb=5),
        tmp_path,
    )
    assert (cpu.gpu_memory_gb, cpu.gpu_count) == (0.0, 0)


def test_memory_is_estimated_from_config_per_gpu_and_by_dtype(tmp_path: Path) -> None:
    models = _models(tmp_path)
    one = validate(DeploymentRequest(name="m", engine="transformers", source="org/tiny"), models)
    assert one.estimated
    assert 2.0 < one.gpu_memory_gb < 4.0  # ~1.1 B parameters in bfloat16, with overhead
    two = validate(DeploymentRequest(name="m", engine="transformers", source="org/tiny", gpu_count=2), models)
    assert two.gpu_memory_gb == pytest.approx(one.gpu_memory_gb / 2, abs=0.002)
    fp32 = validate(
        DeploymentRequest(
            name="m", engine="transformers", source="org/tiny", engine_options={"dtype": "float32"}
        ),
        models,
    )
    assert fp32.gpu_memory_gb == pytest.approx(one.gpu_memory_gb * 2, rel=0.01)
    auto = validate(
        DeploymentRequest(
            name="m", engine="transformers", source="org/tiny", engine_options={"dtype": "auto"}
        ),
        models,
    )
    assert auto.gpu_memory_gb == one.gpu_memory_gb


@pytest.mark.parametrize("source", ["hub-org/model", "broken", "org/missing"])
def test_memory_must_be_given_when_no_config_can_be_read(source: str, tmp_path: Path) -> None:
    refused = _refused(DeploymentRequest(name="m", engine="transformers", source=source), _models(tmp_path))
    assert refused.param == "gpu_memory_gb"
