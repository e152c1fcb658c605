"""Settings: read from GPUCLOUD_* variables (nested with __), validated at once, with derived
paths and modes; child processes get an environment without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from gpucloud.settings import Settings, child_environment, export_overrides

OPERATOR = "operator-key-" + "k" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GPUCLOUD_"):
            monkeypatch.delenv(name)


def test_defaults_derive_the_database_models_dir_and_embedded_mode(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{(tmp_path / 'gpucloud.db').resolve()}"
    assert settings.resolved_models_dir() == (tmp_path / "models").resolve()
    assert settings.redis_dsn() is None
    assert settings.local_worker_enabled()
    assert settings.host == "127.0.0.1"  # loopback unless the operator says otherwise


def test_the_environment_is_read_with_nested_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUCLOUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GPUCLOUD_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("GPUCLOUD_WEBHOOKS__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("GPUCLOUD_LOG_LEVEL", "debug")
    monkeypatch.setenv("GPUCLOUD_PRICES", '{"m": {"input_per_million": 0.5, "output_per_million": 1.5}}')
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.redis_dsn() == "redis://127.0.0.1:6379/3"
    assert not settings.local_worker_enabled()  # cluster mode: workers are separate processes
    assert settings.webhooks.max_attempts == 3
    assert settings.log_level == "DEBUG"
    assert settings.prices["m"].output_per_million == 1.5
    assert "6379/3" not in repr(settings)  # the Redis URL may carry a password


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("GPUCLOUD_LOG_FORMAT", "xml"),
        ("GPUCLOUD_PORT", "70000"),
        ("GPUCLOUD_REDIS_PREFIX", "has space"),
        ("GPUCLOUD_KEY_CACHE_TTL_S", "61"),
        ("GPUCLOUD_ADMIN_KEY", "too-short"),
        ("GPUCLOUD_ADMIN_KEY", OPERATOR + "\n"),
        ("GPUCLOUD_WEBHOOKS__ALLOW_NETWORKS", '["10.0.0.0/33"]'),
    ],
)
def test_bad_values_are_refused_at_once(field: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(field, value)
    with pytest.raises(ValidationError):
        Settings()


def test_an_admin_key_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUCLOUD_ADMIN_KEY", OPERATOR)
    settings = Settings()
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == OPERATOR
    assert OPERATOR not in repr(settings)


def test_an_explicit_local_worker_choice_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUCLOUD_LOCAL_WORKER__ENABLED", "false")
    assert not Settings(data_dir=tmp_path).local_worker_enabled()


def test_children_get_no_gpucloud_variables_and_overrides_are_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GPUCLOUD_WORKER_TOKEN", "gcw_secret")
    monkeypatch.setenv("OTHER_VARIABLE", "kept")
    env = child_environment({"EXTRA": "1"})
    assert "GPUCLOUD_WORKER_TOKEN" not in env
    assert (env["OTHER_VARIABLE"], env["EXTRA"]) == ("kept", "1")
    for name in ("GPUCLOUD_PORT", "GPUCLOUD_API_DOCS"):
        monkeypatch.setenv(name, "placeholder")  # so that monkeypatch removes what the export sets
    export_overrides({"port": 9001, "api_docs": False, "host": None})
    assert os.environ["GPUCLOUD_PORT"] == "9001"
    assert os.environ["GPUCLOUD_API_DOCS"] == "false"
    assert "GPUCLOUD_HOST" not in os.environ
    assert Settings().port == 9001
