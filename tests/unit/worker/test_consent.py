"""`EnginePolicy`: what a worker lets the control plane run (finding 1 of the security review)."""

from __future__ import annotations

import pytest

from gpucloud.worker.consent import EnginePolicy, NotAllowed


def test_default_allows_presets_and_in_process_engines_only() -> None:
    policy = EnginePolicy()
    policy.check("openai", {"preset": "vllm"})
    policy.check("transformers", {"command": "anything", "url": "http://x"})  # not options it reads
    with pytest.raises(NotAllowed, match="--allow-command"):
        policy.check("openai", {"command": "vllm serve {source} --port {port}"})
    with pytest.raises(NotAllowed, match="--allow-url"):
        policy.check("openai", {"url": "http://127.0.0.1:9000"})
    with pytest.raises(NotAllowed, match="args"):
        policy.check("openai", {"preset": "vllm", "args": "--trust-remote-code"})


def test_patterns_match_the_program_as_written_or_resolved_and_preset_names() -> None:
    policy = EnginePolicy.of(["my-server", "/opt/engines/*", "vllm"], ["http://127.0.0.1:9*"])
    policy.check("openai", {"command": "my-server --port {port}"})
    policy.check("openai", {"command": "/opt/engines/llama --port {port}"})
    policy.check("openai", {"preset": "vllm", "args": "--max-model-len 4096"})
    policy.check("openai", {"url": "http://127.0.0.1:9000"})
    for command in ("/bin/sh -c id", "my-server2", "/opt/other/x", "'unclosed"):
        with pytest.raises(NotAllowed):
            policy.check("openai", {"command": command})
    with pytest.raises(NotAllowed):
        policy.check("openai", {"preset": "sglang", "args": "--x"})
    for url in ("http://10.0.0.1:9000", "http://127.0.0.1:9000@evil.example/", "file:///etc/passwd", "x"):
        with pytest.raises(NotAllowed):
            policy.check("openai", {"url": url})
    policy.check("openai", {"url": "http://127.0.0.1:9001/v1"})  # the origin matches 9*
