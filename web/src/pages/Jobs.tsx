// Jobs: recent and queued jobs with status and timings, cancel; for admins also every key's jobs
// and the dead-letter list with retry. A user key sees its own jobs (GET /v1/jobs).
import { useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { Job, JobStatus, ListOf } from "../api/views";
import { useSession } from "../auth";
import { ConfirmButton, Field, Select } from "../components/Controls";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { between, dateTime, ms, num } from "../lib/format";
import { useLoad } from "../lib/hooks";

const STATUSES: ("" | JobStatus)[] = ["", "queued", "running", "completed", "failed", "cancelled", "dead"];

export function Jobs() {
  const { client, isAdmin } = useSession();
  const [status, setStatus] = useState<"" | JobStatus>("");
  const [model, setModel] = useState("");
  const [keyId, setKeyId] = useState("");
  const [actionError, setActionError] = useState<string | null>(null);
  const filters = { status: status || undefined, limit: 100 };
  const jobs = useLoad(
    async () =>
      isAdmin
        ? unwrap<ListOf<Job>>(await client.GET("/api/jobs", { params: { query: { ...filters, model: model.trim() || undefined, key_id: keyId.trim() || undefined } } })).data
        : unwrap<ListOf<Job>>(await client.GET("/v1/jobs", { params: { query: filters } })).data,
    [client, isAdmin, status, model, keyId],
    4000,
  );

  async function act(run: () => Promise<{ response: Response; error?: unknown }>) {
    setActionError(null);
    try {
      unwrap(await run());
      await jobs.reload();
    } catch (err) {
      setActionError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <p className="muted">{isAdmin ? "Every key's jobs, newest first" : "This key's jobs, newest first"}; refreshed every 4 s. Dead-lettered jobs failed every delivery and can be retried.</p>
      <form className="card filters" aria-label="Job filters" onSubmit={(e) => { e.preventDefault(); void jobs.reload(); }}>
        <Select label="Status" value={status} options={STATUSES.map((s): [string, string] => [s, s || "any"])} onChange={(e) => setStatus(e.target.value as "" | JobStatus)} />
        {isAdmin && <Field label="Model" value={model} placeholder="any" onChange={(e) => setModel(e.target.value)} />}
        {isAdmin && <Field label="Key id" value={keyId} placeholder="any" onChange={(e) => setKeyId(e.target.value)} />}
        {isAdmin && (
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setStatus("dead")}>Dead letters</button>
          </div>
        )}
      </form>
      {actionError && <ErrorBox title="The action failed">{actionError}</ErrorBox>}
      <Gate {...jobs} what="jobs">
        {(rows) =>
          rows.length ? (
            <div className="table-wrap">
              <table data-testid="jobs-table">
                <thead>
                  <tr><th>Job</th><th>Status</th><th>Model</th><th>Created</th><th className="num">Waited</th><th className="num">Ran</th><th className="num">Attempts</th>{isAdmin && <th>Key</th>}<th>Detail</th><th><span className="sr-only">Actions</span></th></tr>
                </thead>
                <tbody>
                  {rows.map((j) => (
                    <tr key={j.id}>
                      <td><code>{j.id}</code></td>
                      <td><Badge state={j.status} /></td>
                      <td>{j.model}</td>
                      <td>{dateTime(j.created_at)}</td>
                      <td className="num">{ms(between(j.created_at, j.started_at))}</td>
                      <td className="num">{ms(between(j.started_at, j.finished_at))}</td>
                      <td className="num">{num(j.attempts)}</td>
                      {isAdmin && <td><code>{j.key_id}</code></td>}
                      <td>{j.error ? j.error.message : j.status === "queued" && j.queue_position !== null ? `position ${j.queue_position}` : j.stream ? "streamed" : ""}</td>
                      <td className="actions">
                        {(j.status === "queued" || j.status === "running") && (
                          <ConfirmButton label="Cancel" question="Cancel this job?" confirmLabel="Yes, cancel" onConfirm={() => act(() => client.DELETE("/v1/jobs/{job_id}", { params: { path: { job_id: j.id } } }))} />
                        )}
                        {isAdmin && j.status === "dead" && (
                          <button type="button" onClick={() => act(() => client.POST("/api/jobs/{job_id}/retry", { params: { path: { job_id: j.id } } }))}>Retry</button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>{status === "dead" ? "No dead-lettered jobs: every job ended within its delivery attempts." : "No jobs match. Jobs appear here as requests arrive."}</Empty>
          )
        }
      </Gate>
    </section>
  );
}
