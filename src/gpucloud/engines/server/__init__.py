"""Engine servers: models served by vLLM, SGLang, llama.cpp or `transformers serve`, as a child of
the worker or at a URL, behind the `Engine` protocol (the engine kind `openai`).

- `presets`: how each server is launched and what it speaks;
- `supervisor`: the child process (free 127.0.0.1 port, readiness, restarts with backoff, stop);
- `engine`: `OpenAIServerEngine`, the proxy (streaming, cancellation, error mapping);
- `stream`: SSE chunks into deltas with the server's usage, and upstream errors;
- `prompts`: prompt tokens with the model's own tokenizer where usage is not reported;
- `metrics`: the server's load (running, waiting, KV cache) for heartbeats.
"""

from gpucloud.engines.server.engine import OpenAIServerEngine
from gpucloud.engines.server.presets import PRESETS, Preset
from gpucloud.engines.server.supervisor import ServerProcess

__all__ = ["PRESETS", "OpenAIServerEngine", "Preset", "ServerProcess"]
