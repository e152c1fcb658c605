"""Tests for `gpucloud.engines.sources`: model sources cannot leave the models directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpucloud.engines.sources import check_source, is_hub_id, resolve_source, split_revision


@pytest.mark.parametrize(
    ("source", "normalised"),
    [
        ("llama-3-8b", "llama-3-8b"),
        ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
        ("org/name@v1.0", "org/name@v1.0"),
        ("org/name@refs/pr/1", "org/name@refs/pr/1"),
        ("team/llama/checkpoint-100", "team/llama/checkpoint-100"),
        ("./models//tiny/", "models/tiny"),
        ("  tiny  ", "tiny"),
    ],
)
def test_check_source_accepts_and_normalises(source: str, normalised: str) -> None:
    assert check_source(source) == normalised


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/etc/passwd", "absolute"),
        ("../secrets", "'..'"),
        ("models/../../etc", "'..'"),
        ("a/b/..", "'..'"),
        ("tiny\x00", "control character"),
        ("tiny\nother", "control character"),
        ("models\\tiny", "backslash"),
        ("..\\..\\windows", "backslash"),
        ("~/models", "'~'"),
        (".", "models directory itself"),
        ("x" * 2000, "too long"),
    ],
)
def test_check_source_refuses_with_a_readable_reason(source: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace(".", r"\.").replace("(", r"\(")):
        check_source(source)


def test_hub_ids() -> None:
    assert is_hub_id("gpt2")
    assert is_hub_id("org/name@main")
    assert not is_hub_id("a/b/c")  # three segments: a path, not a hub id
    assert not is_hub_id("org/..")
    assert not is_hub_id("org/na me")
    assert split_revision("org/name@abc123") == ("org/name", "abc123")
    assert split_revision("gpt2") == ("gpt2", None)
    with pytest.raises(ValueError, match="not a hub id"):
        split_revision("a/b/c")


def test_resolve_source_prefers_an_existing_directory(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "org" / "tiny").mkdir(parents=True)
    resolved = resolve_source("org/tiny", models)
    assert resolved == (models / "org" / "tiny").resolve()
    assert isinstance(resolved, Path)
    assert resolved.is_absolute()


def test_resolve_source_falls_back_to_a_hub_id(tmp_path: Path) -> None:
    assert resolve_source("meta-llama/Llama-3.1-8B@main", tmp_path) == "meta-llama/Llama-3.1-8B@main"


def test_resolve_source_refuses_a_missing_path_that_is_no_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found under the models directory"):
        resolve_source("team/llama/checkpoint-100", tmp_path)


@pytest.mark.parametrize("source", ["../outside", "/etc", "a/../../outside"])
def test_resolve_source_refuses_escapes(tmp_path: Path, source: str) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "outside").mkdir()
    with pytest.raises(ValueError, match=r"'\.\.'|absolute"):
        resolve_source(source, models)


def test_resolve_source_refuses_a_symlink_that_escapes(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    secret = tmp_path / "secret-weights"
    secret.mkdir()
    (models / "innocent").symlink_to(secret)
    (models / "nested").mkdir()
    (models / "nested" / "deeper").symlink_to(Path("..") / ".." / "secret-weights")
    for source in ("innocent", "nested/deeper"):
        with pytest.raises(ValueError, match="outside the models directory"):
            resolve_source(source, models)


def test_resolve_source_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "gone").symlink_to(models / "never-was")
    with pytest.raises(ValueError, match="broken link"):
        resolve_source("gone", models)


def test_resolve_source_allows_a_symlink_that_stays_inside(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "weights" / "v2").mkdir(parents=True)
    (models / "current").symlink_to(Path("weights") / "v2")
    assert resolve_source("current", models) == (models / "weights" / "v2").resolve()


def test_resolve_source_works_when_the_models_dir_itself_is_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-models"
    (real / "tiny").mkdir(parents=True)
    link = tmp_path / "models"
    os.symlink(real, link)
    assert resolve_source("tiny", link) == (real / "tiny").resolve()
