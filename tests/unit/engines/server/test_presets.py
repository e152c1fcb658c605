"""Engine-server presets (engines/server/presets.py): the command lines they render."""

from __future__ import annotations

from gpucloud.engines.server.presets import PRESETS, render


def test_engine_server_preset_commands_bind_loopback() -> None:
    values = {"model": "m x", "source": "/models/m", "host": "127.0.0.1", "port": "8001", "python": "py"}
    argv = render(PRESETS["vllm"].command, values)
    assert argv[:3] == ["vllm", "serve", "/models/m"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--served-model-name") + 1] == "m x"  # one argument, not two
    for preset in PRESETS.values():
        assert "{host}" in preset.command
