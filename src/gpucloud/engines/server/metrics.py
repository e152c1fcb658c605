"""Load metrics of an engine server: what its Prometheus `/metrics` says, else what we count.

`LoadReader.read()` returns `{"running_requests", "waiting_requests", "kv_cache_usage"}` (the KV
cache's used fraction, 0..1) as the server exports them (vLLM, SGLang, llama.cpp: see the
presets' series names), plus `proxy_in_flight`, the requests this worker's proxy has open to it.
A server without usable metrics (transformers serve, a failed scrape) reports the proxy's count as
`running_requests`; the key `from_server` (1.0 or 0.0) says which. Readings are cached for
`max_age_s`, so heartbeats and dashboards may ask as often as they like.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping

import httpx

log = logging.getLogger(__name__)
_FRACTIONS = frozenset({"kv_cache_usage"})


def parse_prometheus(text: str, series: Mapping[str, str]) -> dict[str, float]:
    """Each wanted series over its label sets (request counts add up; a usage fraction takes the
    largest: several engines, or old and new names of one series, must not add up past 1)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:  # name{labels} value [timestamp]; label values may hold spaces
            name, rest = line[: line.index("{")], line[line.rindex("}") + 1 :]
        else:
            name, _, rest = line.partition(" ")
        ours = series.get(name)
        if ours is None:
            continue
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        if not math.isfinite(value):
            continue
        if ours in _FRACTIONS:
            values[ours] = max(values.get(ours, 0.0), value)
        else:
            values[ours] = values.get(ours, 0.0) + value
    return values


class LoadReader:
    def __init__(
        self,
        series: Mapping[str, str],
        base_url: Callable[[], str],
        in_flight: Callable[[], int],
        client: Callable[[], httpx.AsyncClient | None],
        *,
        max_age_s: float = 1.0,
    ) -> None:
        self._series = series
        self._base_url = base_url
        self._in_flight = in_flight
        self._client = client
        self._max_age_s = max_age_s
        self._cached: tuple[float, dict[str, float]] | None = None

    async def read(self) -> dict[str, float]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self._max_age_s:
            scraped = self._cached[1]
        else:
            scraped = await self._scrape()
            self._cached = (now, scraped)
        load = {"proxy_in_flight": float(self._in_flight()), "from_server": 1.0 if scraped else 0.0}
        if not scraped:
            load["running_requests"] = float(self._in_flight())
            load["waiting_requests"] = 0.0
        load.update(scraped)
        return load

    async def _scrape(self) -> dict[str, float]:
        client = self._client()
        if not self._series or client is None:
            return {}
        with contextlib.suppress(httpx.HTTPError):
            response = await client.get(self._base_url() + "/metrics", timeout=2.0)
            if response.status_code == 200:
                return parse_prometheus(response.text, self._series)
        log.debug("engine server metrics unavailable; reporting the proxy's own count")
        return {}
