// Batches: upload a JSONL file of requests and start a batch, follow each batch's progress,
// download its output and error files, cancel it. A key sees its own batches (GET /v1/batches).
import { type FormEvent, useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { Batch, FileObject } from "../api/views";
import { useSession } from "../auth";
import { ConfirmButton, Select } from "../components/Controls";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { cancellable, isoOf, progress } from "../lib/batches";
import { dateTime, num } from "../lib/format";
import { useLoad } from "../lib/hooks";

const ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"] as const;
type Endpoint = (typeof ENDPOINTS)[number];

export function Batches() {
  const { client } = useSession();
  const [error, setError] = useState<string | null>(null);
  const batches = useLoad(async () => unwrap<{ data: Batch[] }>(await client.GET("/v1/batches", { params: { query: { limit: 100 } } })).data, [client], 3000);

  async function act(run: () => Promise<void>) {
    setError(null);
    try {
      await run();
      await batches.reload();
    } catch (err) {
      setError(describeError(err));
    }
  }

  async function download(fileId: string) {
    const { data, error: failed, response } = await client.GET("/v1/files/{file_id}/content", { params: { path: { file_id: fileId } }, parseAs: "blob" });
    if (failed !== undefined || !(data instanceof Blob)) throw new Error(`The download failed (status ${response.status}).`);
    const url = URL.createObjectURL(data);
    const link = document.createElement("a");
    link.href = url;
    link.download = `${fileId}.jsonl`;
    link.click();
    URL.revokeObjectURL(url);
  }

  return (
    <section aria-labelledby="batches-title">
      <h1 id="batches-title">Batches</h1>
      <p className="muted">OpenAI's Batch API: each line of a JSONL file runs as a low-priority job, billed at the batch price. Refreshed every 3 s.</p>
      <NewBatch onCreated={() => void batches.reload()} />
      {error && <ErrorBox title="The action failed">{error}</ErrorBox>}
      <Gate {...batches} what="batches">
        {(rows) =>
          rows.length ? (
            <div className="table-wrap">
              <table data-testid="batches-table">
                <thead>
                  <tr><th>Batch</th><th>Status</th><th>Progress</th><th className="num">Failed</th><th>Created</th><th>Files</th><th><span className="sr-only">Actions</span></th></tr>
                </thead>
                <tbody>
                  {rows.map((b) => {
                    const p = progress(b);
                    return (
                      <tr key={b.id}>
                        <td><code>{b.id}</code></td>
                        <td><Badge state={b.status} /></td>
                        <td>
                          <progress max={p.total || 1} value={p.done} aria-label={`${b.id} progress`} />{" "}
                          {p.ratio === null ? "…" : `${num(p.done)} / ${num(p.total)}`}
                        </td>
                        <td className="num">{num(b.request_counts.failed)}</td>
                        <td>{dateTime(isoOf(b.created_at))}</td>
                        <td className="actions">
                          {b.output_file_id && <button type="button" className="secondary" onClick={() => act(() => download(b.output_file_id as string))}>Output</button>}
                          {b.error_file_id && <button type="button" className="secondary" onClick={() => act(() => download(b.error_file_id as string))}>Errors</button>}
                          {b.errors?.data[0] && <span className="field-error">{b.errors.data[0].message}</span>}
                        </td>
                        <td className="actions">
                          {cancellable(b) && (
                            <ConfirmButton label="Cancel" question="Cancel this batch?" confirmLabel="Yes, cancel" onConfirm={() => act(async () => { unwrap(await client.POST("/v1/batches/{batch_id}/cancel", { params: { path: { batch_id: b.id } } })); })} />
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No batches yet. Upload a JSONL file of requests above to start one.</Empty>
          )
        }
      </Gate>
    </section>
  );
}

function NewBatch({ onCreated }: { onCreated: () => void }) {
  const { client } = useSession();
  const [file, setFile] = useState<File | null>(null);
  const [endpoint, setEndpoint] = useState<Endpoint>("/v1/chat/completions");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const formElement = e.currentTarget as HTMLFormElement;
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const form = new FormData();
      form.append("purpose", "batch");
      form.append("file", file);
      const uploaded = unwrap<FileObject>(await client.POST("/v1/files", { body: { file: "", purpose: "batch" }, bodySerializer: () => form }));
      unwrap(await client.POST("/v1/batches", { body: { input_file_id: uploaded.id, endpoint, completion_window: "24h" } }));
      setFile(null);
      formElement.reset(); // the file input forgets the uploaded file too
      onCreated();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card filters" aria-label="New batch" onSubmit={submit}>
      <div className="field">
        <label htmlFor="batch-file">Requests (JSONL)</label>
        <input id="batch-file" type="file" accept=".jsonl,application/jsonl,text/plain" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </div>
      <Select label="Endpoint" value={endpoint} options={ENDPOINTS} onChange={(e) => setEndpoint(e.target.value as Endpoint)} />
      <div className="actions">
        <button type="submit" disabled={!file || busy}>{busy ? "Starting…" : "Upload and start"}</button>
      </div>
      {error && <ErrorBox title="The batch was not started">{error}</ErrorBox>}
    </form>
  );
}
