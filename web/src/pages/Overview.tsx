// Live numbers of the platform: polled from /api/stats and /api/cluster, accumulated as points.
import { useState } from "react";
import { unwrap } from "../api/client";
import type { Cluster, Stats } from "../api/views";
import { useSession } from "../auth";
import { LineSeries, Stat } from "../components/Charts";
import { ErrorBox, Loading } from "../components/Status";
import { bytes, ms, num, percent } from "../lib/format";
import { useLoad } from "../lib/hooks";
import { type OverviewPoint, append, pointOf } from "../lib/series";

export const POLL_MS = 3000;

interface Snapshot {
  stats: Stats;
  cluster: Cluster | null;
}

export function Overview() {
  const { client } = useSession();
  const [points, setPoints] = useState<OverviewPoint[]>([]);
  const { data, error } = useLoad<Snapshot>(
    async () => {
      const [stats, cluster] = await Promise.all([client.GET("/api/stats"), client.GET("/api/cluster")]);
      return { stats: unwrap<Stats>(stats), cluster: cluster.response.ok ? unwrap<Cluster>(cluster) : null };
    },
    [client],
    POLL_MS,
    (snap) => setPoints((prev) => append(prev, pointOf(snap.stats, snap.cluster))),
  );

  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <p className="muted">Rates over the last minute, refreshed every {POLL_MS / 1000} s. The charts grow while this page stays open.</p>
      {error && <ErrorBox title="Could not refresh">{error}</ErrorBox>}
      {!data ? !error && <Loading what="Loading live numbers" /> : <Numbers snap={data} />}
      <div className="charts">
        <LineSeries title="Requests / s" data={points} x="label" series={[{ key: "requestsPerS", name: "requests/s" }]} area />
        <LineSeries title="Tokens / s" data={points} x="label" series={[{ key: "tokensPerS", name: "tokens/s" }]} area />
        <LineSeries title="Latency (ms)" data={points} x="label" series={[{ key: "p50", name: "p50" }, { key: "p95", name: "p95" }]} />
        <LineSeries title="Error rate" data={points} x="label" series={[{ key: "errorRate", name: "errors / requests" }]} />
        <LineSeries title="Queue depth and workers up" data={points} x="label" series={[{ key: "queueDepth", name: "queued jobs" }, { key: "workersUp", name: "workers up" }]} />
        <LineSeries title="GPU memory in use (GiB)" data={points} x="label" series={[{ key: "gpuMemoryUsedGiB", name: "used" }, { key: "gpuMemoryTotalGiB", name: "total" }]} />
      </div>
      {data && <LastHour stats={data.stats} />}
    </section>
  );
}

function Numbers({ snap }: { snap: Snapshot }) {
  const c = snap.stats.current;
  const gpus = snap.cluster?.gpus;
  return (
    <div className="stats">
      <Stat label="Requests / s" value={num(c.requests_per_s, 2)} />
      <Stat label="Tokens / s" value={num(c.tokens_per_s, 1)} hint={`${num(c.completion_tokens_per_s, 1)} generated`} />
      <Stat label="Latency p50" value={ms(c.p50_latency_ms)} />
      <Stat label="Latency p95" value={ms(c.p95_latency_ms)} />
      <Stat label="Error rate" value={percent(c.error_rate)} />
      <Stat label="Queue depth" value={num(c.queue_depth)} hint={`${num(c.running)} running`} />
      <Stat label="Workers up" value={num(c.workers)} hint={`${num(c.slots)} slots`} />
      <Stat
        label="GPU memory in use"
        value={gpus && gpus.count ? bytes(gpus.memory_used_bytes) : "no GPUs"}
        hint={gpus && gpus.count ? `of ${bytes(gpus.memory_total_bytes)} on ${gpus.count} GPUs` : "no worker reported a GPU"}
      />
    </div>
  );
}

function LastHour({ stats }: { stats: Stats }) {
  const rows = stats.series.map((m) => ({
    minute: new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    requests: m.requests,
    tokens: m.prompt_tokens + m.completion_tokens,
    errors: m.errors,
  }));
  return (
    <>
      <h2>Last hour, per minute</h2>
      <div className="charts">
        <LineSeries title="Requests and errors per minute" data={rows} x="minute" series={[{ key: "requests", name: "requests" }, { key: "errors", name: "errors" }]} />
        <LineSeries title="Tokens per minute" data={rows} x="minute" series={[{ key: "tokens", name: "tokens" }]} area />
      </div>
    </>
  );
}
