// Webhooks: the endpoints the key sees — its organisation's, or (in the default organisation) its
// own — with URL and events (the signing secret shown once at creation), each endpoint's recent
// deliveries with their status, and redelivery. Whether this key may change an organisation's
// endpoints is the server's call: the list says so (`can_manage`), and the page then offers no
// form, Delete or Redeliver that would only be refused; a refusal still shows its message.
import { type FormEvent, useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { ListOf, WebhookDelivery, WebhookEndpoint, WebhookEndpointList } from "../api/views";
import { useSession } from "../auth";
import { ConfirmButton, CopyButton, Field } from "../components/Controls";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { isoOf } from "../lib/batches";
import { dateTime, num } from "../lib/format";
import { useLoad } from "../lib/hooks";

const EVENTS = ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled", "job.completed", "job.failed"];

export function Webhooks() {
  const { client } = useSession();
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const listed = useLoad(async () => unwrap<WebhookEndpointList>(await client.GET("/api/webhooks")), [client], 10000);
  const endpoints = { ...listed, data: listed.data ? listed.data.data : null };
  const canManage = listed.data?.can_manage ?? false;

  async function remove(id: string) {
    setError(null);
    try {
      unwrap(await client.DELETE("/api/webhooks/{webhook_id}", { params: { path: { webhook_id: id } } }));
      if (selected === id) setSelected(null);
      await endpoints.reload();
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      <p className="muted">Signed (Standard Webhooks) notifications of batches and jobs, retried with backoff for about a day. An organisation's endpoints hear every key of it; a key made without an organisation has endpoints of its own.</p>
      {canManage ? (
        <NewWebhook onCreated={() => void endpoints.reload()} />
      ) : (
        listed.data && <p className="muted" data-testid="webhooks-read-only">Only the organisation's owners and admins can add or delete endpoints and redeliver; this key can read them.</p>
      )}
      {error && <ErrorBox title="The action failed">{error}</ErrorBox>}
      <Gate {...endpoints} what="webhook endpoints">
        {(rows) =>
          rows.length ? (
            <div className="table-wrap">
              <table data-testid="webhooks-table">
                <thead><tr><th>URL</th><th>Events</th><th>For</th><th>Created</th><th><span className="sr-only">Actions</span></th></tr></thead>
                <tbody>
                  {rows.map((w) => (
                    <tr key={w.id} aria-selected={w.id === selected}>
                      <td><code>{w.url}</code></td>
                      <td>{w.events.join(", ")}</td>
                      <td>{w.org_id ? "the organisation" : "this key"}</td>
                      <td>{dateTime(isoOf(w.created_at))}</td>
                      <td className="actions">
                        <button type="button" className="secondary" onClick={() => setSelected(w.id)}>Deliveries</button>
                        {canManage && <ConfirmButton label="Delete" question="Stop sending to this URL?" confirmLabel="Yes, delete" onConfirm={() => remove(w.id)} />}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No webhook endpoints. Add one above to be told when batches and jobs end.</Empty>
          )
        }
      </Gate>
      {selected && <Deliveries webhookId={selected} canManage={canManage} />}
    </section>
  );
}

function NewWebhook({ onCreated }: { onCreated: () => void }) {
  const { client } = useSession();
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(["batch.completed"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const created = unwrap<WebhookEndpoint>(await client.POST("/api/webhooks", { body: { url: url.trim(), events } }));
      setSecret(created.secret ?? null);
      setUrl("");
      onCreated();
    } catch (err) {
      setError(describeError(err));
    }
  }

  const toggle = (name: string) => setEvents((now) => (now.includes(name) ? now.filter((e) => e !== name) : [...now, name]));
  return (
    <>
      <form className="card filters" aria-label="New webhook" onSubmit={submit}>
        <Field label="URL" type="url" required value={url} placeholder="https://example.com/hooks" onChange={(e) => setUrl(e.target.value)} />
        <fieldset>
          <legend>Events</legend>
          {EVENTS.map((name) => (
            <Field key={name} label={name} type="checkbox" checked={events.includes(name)} onChange={() => toggle(name)} />
          ))}
        </fieldset>
        <div className="actions"><button type="submit" disabled={!url.trim() || events.length === 0}>Add endpoint</button></div>
        {error && <ErrorBox title="The endpoint was not added">{error}</ErrorBox>}
      </form>
      {secret && (
        <div className="card secret" role="region" aria-label="Signing secret">
          <p>Copy this signing secret now: it is shown only this once. Verify each delivery's <code>webhook-signature</code> with it.</p>
          <div className="secret-row">
            <input readOnly aria-label="Webhook signing secret" value={secret} data-testid="new-secret" onFocus={(e) => e.currentTarget.select()} />
            <CopyButton text={secret} />
          </div>
        </div>
      )}
    </>
  );
}

function Deliveries({ webhookId, canManage }: { webhookId: string; canManage: boolean }) {
  const { client } = useSession();
  const [error, setError] = useState<string | null>(null);
  const path = { webhook_id: webhookId };
  const deliveries = useLoad(async () => unwrap<ListOf<WebhookDelivery>>(await client.GET("/api/webhooks/{webhook_id}/deliveries", { params: { path } })).data, [client, webhookId], 3000);

  async function redeliver(id: string) {
    setError(null);
    try {
      unwrap(await client.POST("/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", { params: { path: { ...path, delivery_id: id } } }));
      await deliveries.reload();
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="deliveries-title" className="card">
      <h2 id="deliveries-title">Recent deliveries</h2>
      {error && <ErrorBox title="Redelivery failed">{error}</ErrorBox>}
      <Gate {...deliveries} what="deliveries">
        {(rows) =>
          rows.length ? (
            <div className="table-wrap">
              <table data-testid="deliveries-table">
                <thead><tr><th>Event</th><th>Status</th><th className="num">Tries</th><th className="num">Last answer</th><th>Last error</th><th>Next try</th><th><span className="sr-only">Actions</span></th></tr></thead>
                <tbody>
                  {rows.map((d) => (
                    <tr key={d.id}>
                      <td>{d.event_type} <code>{d.event_id}</code></td>
                      <td><Badge state={d.status} /></td>
                      <td className="num">{num(d.attempts)}</td>
                      <td className="num">{d.last_status_code ?? "—"}</td>
                      <td>{d.last_error ?? ""}</td>
                      <td>{d.next_attempt_at ? dateTime(isoOf(d.next_attempt_at)) : "—"}</td>
                      <td className="actions">{canManage && <button type="button" onClick={() => void redeliver(d.id)}>Redeliver</button>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No deliveries yet: they appear when an event this endpoint subscribes to happens.</Empty>
          )
        }
      </Gate>
    </section>
  );
}
