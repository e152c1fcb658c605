"""`OpenAIServerEngine`: a model served by an OpenAI-compatible engine server, behind our queue.

The engine kind `openai`. Either the worker launches and supervises the server (a preset, or a
custom `command`; see `presets` and `supervisor`), or it attaches to one already running (`url`).
Each choice of a job is one streamed request to the server's `/v1/chat/completions` or
`/v1/completions` (always streamed, so that tokens flow as they come and a cancelled job closes
the HTTP stream, which the servers take as an abort). Usage is the server's own report (`stream`).
Tools, `tool_choice`, `response_format`, logprobs, penalties, `logit_bias` and `user` pass
through as the client sent them; the answer's tool-call pieces and logprobs are relayed. Those the
server is known not to honour (its preset's capabilities, less the `lacks` option) are refused by
the gateway before they get here.

Options (strings, as `--engine-option KEY=VALUE` gives them):
- `preset`: vllm | sglang | llama.cpp | transformers; `command`: a custom template instead;
  `args`: extra arguments appended to either (shell-split);
- `url`: attach to a running server instead of launching one (nothing is supervised then);
- `served_model`: the model name to send upstream (default: the preset's; `{model}`, `{source}`);
- `startup_timeout_s` (600), `request_timeout_s` (600: the longest silence within an answer),
  `restart_wait_s` (60: how long a request waits for a restarting server before a retryable
  error), `restart_backoff_s` (1) and `max_restart_backoff_s` (30);
- `lacks`: capabilities the server does not have (comma-separated flags of `Capabilities`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
import time
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import httpx

from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.engines.logit_bias import check_logit_bias
from gpucloud.engines.protocol import Delta, EngineError, GenerationRequest
from gpucloud.engines.server.metrics import LoadReader
from gpucloud.engines.server.presets import CUSTOM, HOST, Preset, preset_named, render, resolve_program
from gpucloud.engines.server.prompts import PromptCounter
from gpucloud.engines.server.stream import UsageStream, passed_through, sse_chunks, upstream_error
from gpucloud.engines.server.supervisor import ServerProcess

_FLOAT_OPTIONS = (
    "startup_timeout_s",
    "request_timeout_s",
    "restart_wait_s",
    "restart_backoff_s",
    "max_restart_backoff_s",
)
_OPTION_NAMES = (
    "preset",
    "command",
    "args",
    "url",
    "served_model",
    "cuda_visible_devices",
    *_FLOAT_OPTIONS,
    "lacks",
)


class OpenAIServerEngine:
    """A model behind an OpenAI-compatible server (see module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        preset: Preset,
        source: str,
        upstream_model: str,
        command: list[str] | None = None,
        url: str | None = None,
        tokenizer_dir: Path | None = None,
        timeouts: Mapping[str, float] | None = None,
        gpus: str | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        if (command is None) == (url is None):
            raise ValueError("an engine server needs either a command to launch or a url to attach to")
        t = dict(timeouts or {})
        self._model = model
        self._preset = preset
        self._capabilities = capabilities or capabilities_of_kind("openai", {"preset": preset.name})
        self._source = source
        self._upstream_model = upstream_model
        self._url = url.rstrip("/") if url else None
        self._startup_timeout_s = t.get("startup_timeout_s", 600.0)
        self._request_timeout_s = t.get("request_timeout_s", 600.0)
        self._restart_wait_s = t.get("restart_wait_s", 60.0)
        self._process: ServerProcess | None = None
        if command is not None:
            self._process = ServerProcess(
                lambda port: _argv(command, port),
                health_path=preset.health_path,
                startup_timeout_s=self._startup_timeout_s,
                backoff_s=t.get("restart_backoff_s", 1.0),
                max_backoff_s=t.get("max_restart_backoff_s", 30.0),
                extra_env={"CUDA_VISIBLE_DEVICES": gpus} if gpus else None,
            )
        self._prompts = PromptCounter(tokenizer_dir)
        self._client: httpx.AsyncClient | None = None
        self._in_flight = 0
        self._load = LoadReader(preset.metrics, self.base_url, lambda: self._in_flight, lambda: self._client)

    @classmethod
    def from_options(cls, model: str, options: Mapping[str, str], source: str | None) -> OpenAIServerEngine:
        """Build from string options; `source` is the resolved model source (a path or hub id)."""
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise ValueError(
                f"unknown openai engine option(s) {', '.join(unknown)}; known: {', '.join(_OPTION_NAMES)}"
            )
        timeouts = {key: _positive(key, options[key]) for key in _FLOAT_OPTIONS if key in options}
        preset = preset_named(options["preset"]) if "preset" in options else CUSTOM
        url = options.get("url")
        template = options.get("command") or preset.command
        if url is None and not template:
            raise ValueError("the openai engine needs a preset, a command or a url")
        src = source or model
        # {port} stays a placeholder until each launch picks a free port.
        values = {"model": model, "source": src, "host": HOST, "python": sys.executable, "port": "{port}"}
        command: list[str] | None = None
        if url is None:
            command = render(template, values) + shlex.split(options.get("args", ""))
            command = resolve_program(command)
        upstream = (options.get("served_model") or preset.upstream_model).format_map(values)
        local = Path(src) if source and Path(src).is_dir() else None
        return cls(
            model,
            preset=preset,
            source=src,
            upstream_model=upstream,
            command=command,
            url=url,
            tokenizer_dir=local,
            timeouts=timeouts,
            gpus=options.get("cuda_visible_devices"),
            capabilities=capabilities_of_kind("openai", options),  # ValueError names a bad `lacks`
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def server(self) -> ServerProcess | None:
        """The supervised child (None when attached to a URL)."""
        return self._process

    def base_url(self) -> str:
        if self._url is not None:
            return self._url
        assert self._process is not None
        return self._process.base_url

    async def start(self) -> None:
        await asyncio.to_thread(self._prompts.load)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        timeout = httpx.Timeout(self._request_timeout_s, connect=10.0)
        self._client = httpx.AsyncClient(timeout=timeout, limits=limits)
        try:
            if self._process is not None:
                await self._process.start()
            else:
                await self._until_reachable()
        except BaseException:
            await self.stop()
            raise

    async def _until_reachable(self) -> None:
        """Attach mode: the server answers its health path or `/v1/models`, within the timeout."""
        assert self._client is not None
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            for path in (self._preset.health_path, "/v1/models"):
                with contextlib.suppress(httpx.HTTPError):
                    if (await self._client.get(self.base_url() + path, timeout=2.0)).status_code == 200:
                        return
            await asyncio.sleep(0.25)
        raise EngineError(
            f"the engine server at {self._url} did not answer within {self._startup_timeout_s:.0f}s"
        )

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return self._prompts.count(request)

    async def load_metrics(self) -> dict[str, float]:
        """The server's load for heartbeats (see `metrics.LoadReader`)."""
        return await self._load.read()

    async def generate(self, request: GenerationRequest, index: int) -> AsyncGenerator[Delta, None]:
        """Stream one choice from the server; closing this generator closes the HTTP stream."""
        self._check_logit_bias(request)
        client = await self._ready_client()
        path = "/v1/chat/completions" if request.kind == "chat" else "/v1/completions"
        usage = UsageStream(self._preset.continuous_usage)
        self._in_flight += 1
        try:
            async with client.stream(
                "POST", self.base_url() + path, json=self._body(request, index)
            ) as response:
                if response.status_code >= 400:
                    raise await upstream_error(response)
                async for chunk in sse_chunks(response):
                    delta = usage.feed(chunk)
                    if delta is not None:
                        yield delta
            yield usage.final()
        except httpx.TimeoutException:
            raise EngineError("the engine server did not answer in time", retryable=True) from None
        except httpx.TransportError as exc:
            raise EngineError(
                f"lost the connection to the engine server ({type(exc).__name__})", retryable=True
            ) from None
        finally:
            self._in_flight -= 1

    async def _ready_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineError(f"the engine server of {self._model!r} is not started", retryable=True)
        if self._process is not None and not await self._process.wait_ready(self._restart_wait_s):
            raise EngineError("the engine server is restarting; try again", retryable=True)
        return self._client

    def _check_logit_bias(self, request: GenerationRequest) -> None:
        """Checked here, where the tokenizer is known: servers fail such ids mid-stream."""
        check_logit_bias(request, self._prompts.vocabulary_size())

    def _body(self, request: GenerationRequest, index: int) -> dict[str, Any]:
        options: dict[str, Any] = {"include_usage": True}
        if self._preset.continuous_usage:
            options["continuous_usage_stats"] = True
        body: dict[str, Any] = {"model": self._upstream_model, "stream": True, "stream_options": options}
        if request.kind == "chat":
            body["messages"] = request.messages or []
        else:
            body["prompt"] = request.prompt or ""
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        for name in ("temperature", "top_p"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.seed is not None:
            body["seed"] = request.seed + index  # n choices of one seeded request must differ
        return body | passed_through(request)


def _argv(command: list[str], port: int) -> list[str]:
    return [word.replace("{port}", str(port)) for word in command]


def _positive(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a number") from None
    if not value > 0:
        raise ValueError(f"engine option {key} must be greater than 0, got {raw!r}")
    return value
