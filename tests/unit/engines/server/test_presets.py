"""Engine-server presets (engines/server/presets.py): the command lines they render, and the
capabilities an engine server announces."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpucloud.engines import build_engine
from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.engines.server.presets import PRESETS, render


def test_engine_server_preset_commands_bind_loopback() -> None:
    values = {"model": "m x", "source": "/models/m", "host": "127.0.0.1", "port": "8001", "python": "py"}
    argv = render(PRESETS["vllm"].command, values)
    assert argv[:3] == ["vllm", "serve", "/models/m"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--served-model-name") + 1] == "m x"  # one argument, not two
    for preset in PRESETS.values():
        assert "{host}" in preset.command


def test_an_engine_server_announces_its_presets_capabilities_less_what_it_lacks() -> None:
    url = "http://127.0.0.1:9"  # attached: nothing is launched or contacted here
    served = build_engine("openai", "m", {"preset": "transformers", "url": url, "served_model": "x"})
    assert served.capabilities == capabilities_of_kind("openai", {"preset": "transformers"})
    assert not served.capabilities.json_schema
    lacking = build_engine("openai", "m", {"url": url, "lacks": "seed"})
    assert lacking.capabilities == replace(Capabilities.everything(), seed=False)
    with pytest.raises(ValueError, match="unknown capabilities wings"):
        build_engine("openai", "m", {"url": url, "lacks": "wings"})
