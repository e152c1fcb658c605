// The fleet (admin): each worker with its GPUs, heartbeat age and state; drain and undrain.
import { useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { Cluster, ListOf, Worker } from "../api/views";
import { useSession } from "../auth";
import { Meter, Stat } from "../components/Charts";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { num, percent, seconds } from "../lib/format";
import { useLoad } from "../lib/hooks";

/** GPU memory in decimal GB, the unit deployments ask for (`gpu_memory_gb`) and GPUs are sold in. */
export function gb(value: number): string {
  return `${(value / 1e9).toFixed(1)} GB`;
}

export function Workers() {
  const { client } = useSession();
  const workers = useLoad(async () => unwrap<ListOf<Worker>>(await client.GET("/api/workers")).data, [client], 5000);
  const cluster = useLoad(async () => unwrap<Cluster>(await client.GET("/api/cluster")), [client], 5000);
  const [actionError, setActionError] = useState<string | null>(null);

  async function setDraining(w: Worker, drain: boolean) {
    setActionError(null);
    const params = { params: { path: { worker_id: w.id } } };
    try {
      unwrap(drain ? await client.POST("/api/workers/{worker_id}/drain", params) : await client.POST("/api/workers/{worker_id}/undrain", params));
      await Promise.all([workers.reload(), cluster.reload()]);
    } catch (err) {
      setActionError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="workers-title">
      <h1 id="workers-title">Workers &amp; GPUs</h1>
      {cluster.data && <ClusterTotals c={cluster.data} />}
      {actionError && <ErrorBox title="The change failed">{actionError}</ErrorBox>}
      <Gate {...workers} what="workers">
        {(rows) =>
          rows.length ? (
            <div className="cards">
              {rows.map((w) => (
                <WorkerCard key={w.id} w={w} onDrain={(d) => setDraining(w, d)} />
              ))}
            </div>
          ) : (
            <Empty>
              No worker has registered with the control plane yet. Start one with <code>gpucloud worker --server URL --token gcw_…</code>; the worker
              inside <code>gpucloud serve</code> appears here as <code>local-&lt;hostname&gt;</code> once it has sent its first heartbeat.
            </Empty>
          )
        }
      </Gate>
    </section>
  );
}

function ClusterTotals({ c }: { c: Cluster }) {
  const healthy = c.workers.healthy ?? 0;
  const queued = Object.values(c.queue_depth).reduce((a, b) => a + b, 0);
  return (
    <div className="stats">
      <Stat label="Workers" value={`${num(healthy)} healthy`} hint={`${num(c.workers.total)} in all, ${num(c.workers.draining)} draining`} />
      <Stat label="GPUs" value={num(c.gpus.count)} hint={c.gpus.count ? `${gb(c.gpus.memory_used_bytes)} of ${gb(c.gpus.memory_total_bytes)} in use` : undefined} />
      <Stat label="Slots" value={num(c.slots)} hint={`${num(c.running)} running`} />
      <Stat label="Queued" value={num(queued)} />
    </div>
  );
}

function WorkerCard({ w, onDrain }: { w: Worker; onDrain: (drain: boolean) => Promise<void> }) {
  const [busy, setBusy] = useState(false);
  const toggle = async () => {
    setBusy(true);
    await onDrain(!w.draining);
    setBusy(false);
  };
  return (
    <article className="card" aria-label={`Worker ${w.id}`}>
      <header className="card-head">
        <h2>{w.id}</h2>
        <span>
          <Badge state={w.state} /> {w.draining && <Badge state="draining" />}
        </span>
      </header>
      <dl className="facts">
        <div><dt>Host</dt><dd>{w.hostname}</dd></div>
        <div><dt>Heartbeat</dt><dd>{seconds(w.last_heartbeat_age_s)} ago</dd></div>
        <div><dt>Jobs</dt><dd>{w.running} running of {w.slots} slots</dd></div>
        <div><dt>Tokens / s</dt><dd>{num(w.tokens_per_s, 1)}</dd></div>
        <div><dt>Models</dt><dd>{w.models.length ? w.models.join(", ") : "none"}</dd></div>
        {Object.keys(w.labels).length > 0 && <div><dt>Labels</dt><dd>{Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(", ")}</dd></div>}
      </dl>
      {w.gpus.length ? (
        <ul className="gpus">
          {w.gpus.map((g) => (
            <li key={g.uuid}>
              <Meter label={`GPU ${g.index}: ${g.name}`} used={g.memory_used_bytes} total={g.memory_total_bytes} text={`${gb(g.memory_used_bytes)} / ${gb(g.memory_total_bytes)}`} />
              <small className="muted">
                utilisation {percent(g.utilization, 0)} · {g.temperature_c === null ? "—" : `${Math.round(g.temperature_c)} °C`} · {g.power_w === null ? "—" : `${Math.round(g.power_w)} W`}
              </small>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">No GPU reported (CPU only, or NVML unavailable).</p>
      )}
      <div className="actions">
        <button type="button" className="secondary" disabled={busy} onClick={toggle}>
          {w.draining ? "Undrain" : "Drain"}
        </button>
        <small className="muted">{w.draining ? "Not taking new jobs." : "Drain: stop taking new jobs, let running ones finish."}</small>
      </div>
    </article>
  );
}
