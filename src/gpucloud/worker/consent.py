"""`EnginePolicy`: what a worker's owner lets the control plane run on the machine.

A deployment's `engine_options` come from whoever holds an admin key. For the engine-server
engine (`openai`) two of them would turn that key into a shell on every worker: a custom
`command` template (any program, run as the worker's user) and `url` (make the worker connect
wherever the control plane says). So a worker refuses both unless its own configuration allows
them, and presets (vLLM, SGLang, llama.cpp, transformers serve) are the only default:

- `gpucloud worker --allow-command PATTERN` (repeatable): a shell-style pattern (`fnmatch`)
  matched against a command's program, as written and as resolved to a path, and against
  preset names. A preset with extra `args` also needs its name (or program) allowed, since
  arguments can change what a server loads and runs.
- `--allow-url PATTERN` (repeatable): a pattern the attach URL's origin, `scheme://host:port`,
  must match (`http://127.0.0.1:9000`, `http://10.0.0.*:8000`); a URL with userinfo is refused.

The embedded worker reads the same lists from `GPUCLOUD_LOCAL_WORKER__ALLOW_COMMANDS` and
`__ALLOW_URLS`. The worker's own `--engine-option`s are its owner's choice and are not checked.
A refusal is an `EngineError` whose message says what is not allowed and which flag allows it;
it becomes the replica's reason.
"""

from __future__ import annotations

import contextlib
import fnmatch
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gpucloud.engines.protocol import EngineError
from gpucloud.engines.server.presets import PRESETS, resolve_program
from gpucloud.settings import Settings


class NotAllowed(EngineError):
    """An assignment asks for something this worker's owner did not allow."""


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    allow_commands: tuple[str, ...] = ()
    allow_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, commands: Sequence[str] = (), urls: Sequence[str] = ()) -> EnginePolicy:
        return cls(tuple(p for p in commands if p), tuple(p for p in urls if p))

    def check(self, engine: str, options: Mapping[str, str]) -> None:
        """Raise `NotAllowed` unless the control plane may run `engine` with `options` here."""
        if engine != "openai":
            return  # in-process engines run no program of the control plane's choosing
        if "url" in options:
            self._check_url(options["url"])
        if options.get("command"):
            self._check_command(options["command"])
        elif "args" in options and options["args"].strip():
            self._check_preset_args(options.get("preset", ""))

    def _check_url(self, url: str) -> None:
        origin = _origin(url)
        if origin is None or not any(fnmatch.fnmatchcase(origin, p) for p in self.allow_urls):
            raise NotAllowed(
                "this worker does not allow attaching to engine server URLs chosen by the control plane "
                "(its owner can allow some with `gpucloud worker --allow-url PATTERN`)"
            )

    def _check_command(self, template: str) -> None:
        if not self._program_allowed(template):
            raise NotAllowed(
                "this worker does not allow custom engine server commands "
                "(its owner can allow programs with `gpucloud worker --allow-command PATTERN`)"
            )

    def _check_preset_args(self, preset: str) -> None:
        allowed = any(fnmatch.fnmatchcase(preset, p) for p in self.allow_commands)
        if not allowed and preset in PRESETS:
            allowed = self._program_allowed(PRESETS[preset].command)
        if not allowed:
            raise NotAllowed(
                "this worker does not allow extra engine server arguments (`args`) "
                "(its owner can allow them for a preset with `gpucloud worker --allow-command PRESET`)"
            )

    def _program_allowed(self, template: str) -> bool:
        try:
            words = shlex.split(template)
        except ValueError:
            return False
        if not words or not self.allow_commands:
            return False
        program = sys.executable if words[0] == "{python}" else words[0]
        names = {words[0], program}
        with contextlib.suppress(ValueError):  # not installed: a pattern may name it as written
            names.add(resolve_program([program])[0])
        return any(fnmatch.fnmatchcase(n, p) for n in names for p in self.allow_commands)


def _origin(url: str) -> str | None:
    """`scheme://host:port` of an http(s) URL, or None for anything else. Patterns match this, not
    the raw text, so that `*` cannot reach into userinfo (`http://127.0.0.1:9000@elsewhere/`)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{parts.hostname}:{port}"


def local_policy(settings: Settings) -> EnginePolicy:
    """The embedded worker's policy, from `GPUCLOUD_LOCAL_WORKER__ALLOW_COMMANDS` / `__ALLOW_URLS`."""
    return EnginePolicy.of(settings.local_worker.allow_commands, settings.local_worker.allow_urls)
