// Model deployments (admin): each with its replicas' states and reasons; create, scale, delete.
import { type FormEvent, useState } from "react";
import { ApiError, describeError, unwrap } from "../api/client";
import type { Deployment, ListOf, Worker } from "../api/views";
import { useSession } from "../auth";
import { ConfirmButton, Field, Select } from "../components/Controls";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { dateTime } from "../lib/format";
import { type DeploymentForm, ENGINES, emptyDeploymentForm, gpuHints, needsSource, parseDeploymentForm } from "../lib/deploymentForm";
import type { FieldErrors } from "../lib/forms";
import { useLoad } from "../lib/hooks";

/** Replica states that change by themselves within seconds (placement, loading, unloading). */
const MOVING = new Set(["pending", "scheduled", "loading", "unloading"]);

/** Whether a deployment is on its way somewhere: the page then refreshes every second, not every 5 s. */
export function settling(d: Deployment): boolean {
  if (MOVING.has(d.state) || d.replica_states.some((r) => MOVING.has(r.state))) return true;
  return d.state !== "unschedulable" && !d.on_demand && d.replica_states.length !== d.replicas; // not yet placed
}

export function Deployments() {
  const { client } = useSession();
  const [fast, setFast] = useState(false);
  const list = useLoad(
    async () => unwrap<ListOf<Deployment>>(await client.GET("/api/deployments")).data,
    [client],
    fast ? 1000 : 5000,
    (rows) => setFast(rows.some(settling)),
  );
  // To name the GPUs a replica holds ("GPU 0 · H100") rather than by UUID alone.
  const workers = useLoad(async () => unwrap<ListOf<Worker>>(await client.GET("/api/workers")).data, [client], 5000);
  const gpuNames = new Map((workers.data ?? []).flatMap((w) => w.gpus.map((g) => [g.uuid, `GPU ${g.index} · ${g.name}`] as const)));
  const [actionError, setActionError] = useState<string | null>(null);

  async function act(run: () => Promise<{ response: Response; error?: unknown }>) {
    setActionError(null);
    try {
      unwrap(await run());
      await list.reload();
    } catch (err) {
      setActionError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="deployments-title">
      <h1 id="deployments-title">Deployments</h1>
      <p className="muted">A deployment places a model's replicas onto workers' GPUs; its state follows the replicas (refreshed every 5 s, every second while one changes).</p>
      <CreateDeployment onCreated={list.reload} />
      {actionError && <ErrorBox title="The change failed">{actionError}</ErrorBox>}
      <Gate {...list} what="deployments">
        {(rows) =>
          rows.length ? (
            <div className="cards cards-wide">
              {rows.map((d) => (
                <DeploymentCard
                  key={d.id}
                  d={d}
                  gpuNames={gpuNames}
                  onScale={(replicas) => act(() => client.PATCH("/api/deployments/{ref}", { params: { path: { ref: d.id } }, body: { replicas } }))}
                  onDelete={() => act(() => client.DELETE("/api/deployments/{ref}", { params: { path: { ref: d.id } } }))}
                />
              ))}
            </div>
          ) : (
            <Empty>No deployments yet. Create one above; workers registered with the control plane will load it.</Empty>
          )
        }
      </Gate>
    </section>
  );
}

function DeploymentCard({
  d,
  gpuNames,
  onScale,
  onDelete,
}: {
  d: Deployment;
  gpuNames: ReadonlyMap<string, string>;
  onScale: (n: number) => Promise<void>;
  onDelete: () => Promise<void>;
}) {
  const [replicas, setReplicas] = useState(String(d.replicas));
  const valid = /^\d+$/.test(replicas) && Number(replicas) <= 1000;
  return (
    <article className="card" aria-label={`Deployment ${d.name}`}>
      <header className="card-head">
        <h2>{d.name}</h2>
        <Badge state={d.state} />
      </header>
      {d.reason && <p className="reason">{d.reason}</p>}
      <dl className="facts">
        <div><dt>Engine</dt><dd>{d.engine}</dd></div>
        <div><dt>Source</dt><dd>{d.source ?? "—"}</dd></div>
        <div><dt>Ready</dt><dd>{d.ready_replicas} of {d.replicas}</dd></div>
        <div><dt>GPU memory</dt><dd>{gpuText(d)}</dd></div>
        <div><dt>Placement</dt><dd>{d.policy}{d.gpu_type ? `, ${d.gpu_type}` : ""}</dd></div>
        <div><dt>On demand</dt><dd>{d.on_demand ? `yes${d.idle_unload_seconds ? `, unload after ${d.idle_unload_seconds} s idle` : ""}` : "no"}</dd></div>
        <div><dt>Updated</dt><dd>{dateTime(d.updated_at)}</dd></div>
      </dl>
      {d.replica_states.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption>Replicas</caption>
            <thead><tr><th>#</th><th>State</th><th>Worker</th><th>GPUs</th><th>Reason</th></tr></thead>
            <tbody>
              {d.replica_states.map((r) => (
                <tr key={r.index}>
                  <td>{r.index}</td>
                  <td><Badge state={r.state} /></td>
                  <td>{r.worker_id ?? "—"}</td>
                  <td>
                    {r.gpu_uuids.length
                      ? r.gpu_uuids.map((u, i) => (
                          <span key={u} title={u}>
                            {i > 0 && ", "}
                            {gpuNames.get(u) ?? u}
                          </span>
                        ))
                      : "—"}
                  </td>
                  <td className="replica-reason">{r.reason ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form className="actions" onSubmit={(e) => { e.preventDefault(); if (valid) void onScale(Number(replicas)); }} aria-label={`Scale ${d.name}`}>
        <Field label="Replicas" inputMode="numeric" value={replicas} error={valid ? undefined : "0 to 1000"} onChange={(e) => setReplicas(e.target.value)} />
        <button type="submit" className="secondary" disabled={!valid || Number(replicas) === d.replicas}>Scale</button>
        <ConfirmButton label="Delete" question={`Delete "${d.name}"? Its replicas are unloaded.`} confirmLabel="Yes, delete" onConfirm={onDelete} />
      </form>
    </article>
  );
}

function gpuText(d: Deployment): string {
  if (d.gpu_count === 0) return "none (runs on CPU)";
  const per = d.gpu_memory_gb === null ? "estimated" : `${d.gpu_memory_gb} GB per GPU`;
  const estimated = d.gpu_memory_estimated ? " (estimated from the model's config.json)" : "";
  return `${per} × ${d.gpu_count} GPU${d.gpu_count === 1 ? "" : "s"}${estimated}`;
}

function CreateDeployment({ onCreated }: { onCreated: () => Promise<void> }) {
  const { client } = useSession();
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState<DeploymentForm>(emptyDeploymentForm);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof DeploymentForm>(k: K, v: DeploymentForm[K]) => setForm((f) => ({ ...f, [k]: v }));
  const hints = gpuHints(form.engine);
  const cancel = () => {
    setForm(emptyDeploymentForm); // what was typed must not leak into the next deployment
    setErrors({});
    setError(null);
    setOpen(false);
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    const parsed = parseDeploymentForm(form);
    if (!parsed.ok) {
      setErrors(parsed.errors);
      return;
    }
    setErrors({});
    setError(null);
    setBusy(true);
    try {
      unwrap(await client.POST("/api/deployments", { body: parsed.value }));
      cancel();
      await onCreated();
    } catch (err) {
      if (err instanceof ApiError && err.param) setErrors({ [err.param]: err.message });
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  if (!open) {
    return (
      <p>
        <button type="button" onClick={() => setOpen(true)}>Create a deployment</button>
      </p>
    );
  }
  return (
    <form className="card" onSubmit={submit} aria-label="Create a deployment" noValidate>
      <h2>New deployment</h2>
      {error && <ErrorBox title="Could not create the deployment">{error}</ErrorBox>}
      <div className="grid">
        <Field label="Model name" value={form.name} error={errors.name} hint="clients send it as `model`" autoFocus required onChange={(e) => set("name", e.target.value)} />
        <Select label="Engine" value={form.engine} options={ENGINES} onChange={(e) => set("engine", e.target.value as DeploymentForm["engine"])} />
        <Field label="Source" value={form.source} error={errors.source} hint={needsSource(form.engine) ? "path under the models directory, hub id or server URL" : "optional for the simulated engine"} onChange={(e) => set("source", e.target.value)} />
        <Field label="Replicas" inputMode="numeric" value={form.replicas} error={errors.replicas} onChange={(e) => set("replicas", e.target.value)} />
        <Field label="GPU memory per GPU (GB)" inputMode="decimal" value={form.gpu_memory_gb} error={errors.gpu_memory_gb} hint={hints.memory} onChange={(e) => set("gpu_memory_gb", e.target.value)} />
        <Field label="GPUs per replica" inputMode="numeric" value={form.gpu_count} error={errors.gpu_count} hint={hints.count} onChange={(e) => set("gpu_count", e.target.value)} />
        <Field label="GPU type" value={form.gpu_type} error={errors.gpu_type} hint="part of the GPU name, e.g. H100; empty: any" onChange={(e) => set("gpu_type", e.target.value)} />
        <Select label="Placement" value={form.policy} options={[["spread", "spread over workers"], ["binpack", "pack onto few workers"]]} onChange={(e) => set("policy", e.target.value as DeploymentForm["policy"])} />
        <Field label="Engine options" value={form.engine_options} error={errors.engine_options} hint="key=value, comma-separated" onChange={(e) => set("engine_options", e.target.value)} />
        <Field label="Worker labels" value={form.labels} error={errors.labels} hint="key=value the workers must carry" onChange={(e) => set("labels", e.target.value)} />
        <Field label="Load on demand" type="checkbox" checked={form.on_demand} hint="load on the first request, unload when idle" onChange={(e) => set("on_demand", e.target.checked)} />
        {form.on_demand && <Field label="Unload after idle (s)" inputMode="numeric" value={form.idle_unload_seconds} error={errors.idle_unload_seconds} hint="empty: the server's default" onChange={(e) => set("idle_unload_seconds", e.target.value)} />}
      </div>
      <div className="actions">
        <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create deployment"}</button>
        <button type="button" className="secondary" onClick={cancel}>Cancel</button>
      </div>
    </form>
  );
}
