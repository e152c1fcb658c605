// Points accumulated in the browser from successive polls, kept to a bounded window.

import type { Cluster, Stats } from "../api/views";

export interface OverviewPoint {
  t: number;
  label: string;
  requestsPerS: number;
  tokensPerS: number;
  p50: number | null;
  p95: number | null;
  errorRate: number;
  queueDepth: number;
  workersUp: number;
  gpuMemoryUsedGiB: number;
  gpuMemoryTotalGiB: number;
}

export const MAX_POINTS = 180;
const GIB = 1024 ** 3;

/** One point from a poll of /api/stats and /api/cluster (the cluster is optional). */
export function pointOf(stats: Stats, cluster: Cluster | null, now = Date.now()): OverviewPoint {
  const c = stats.current;
  return {
    t: now,
    label: new Date(now).toLocaleTimeString(),
    requestsPerS: c.requests_per_s,
    tokensPerS: c.tokens_per_s,
    p50: c.p50_latency_ms,
    p95: c.p95_latency_ms,
    errorRate: c.error_rate,
    queueDepth: c.queue_depth,
    workersUp: c.workers,
    gpuMemoryUsedGiB: cluster ? cluster.gpus.memory_used_bytes / GIB : 0,
    gpuMemoryTotalGiB: cluster ? cluster.gpus.memory_total_bytes / GIB : 0,
  };
}

/** `points` with `next` appended, the oldest dropped beyond `max`. */
export function append<T>(points: readonly T[], next: T, max = MAX_POINTS): T[] {
  const out = [...points, next];
  return out.length > max ? out.slice(out.length - max) : out;
}
