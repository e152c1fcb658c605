// The audit log, newest first: who did what to what, when, with what result. Filters by actor,
// action, target, result and time range; "Load more" follows the server's cursor. Platform admins
// read every organisation's rows (or the chosen one's); owners and admins read their organisation's.
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { AuditList, AuditRow } from "../api/views";
import { useSession } from "../auth";
import { Field, Select } from "../components/Controls";
import { Badge, Empty, ErrorBox, Loading } from "../components/Status";
import { dateTime } from "../lib/format";
import { type AuditFilters, appendPage, auditQuery, noFilters } from "../lib/audit";
import { useOrg } from "../org";

interface Pages {
  rows: AuditRow[];
  next: string | null;
}

function useAudit(filters: AuditFilters, orgId: string | null) {
  const { client } = useSession();
  const [pages, setPages] = useState<Pages | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(
    async (from: Pages | null) => {
      setBusy(true);
      setError(null);
      try {
        const query = auditQuery(filters, orgId, from?.next ?? null);
        const page = unwrap<AuditList>(await client.GET("/api/audit", { params: { query } }));
        setPages({ rows: appendPage(from?.rows ?? [], page.data), next: page.next_cursor });
      } catch (err) {
        setError(describeError(err));
      } finally {
        setBusy(false);
      }
    },
    [client, filters, orgId],
  );
  useEffect(() => {
    setPages(null);
    void load(null);
  }, [load]);
  return { pages, error, busy, load };
}

export function Audit() {
  const { org, myRole } = useOrg();
  const [draft, setDraft] = useState<AuditFilters>(noFilters);
  const [filters, setFilters] = useState<AuditFilters>(noFilters);
  const { pages, error, busy, load } = useAudit(filters, org?.id ?? null);
  const set = (k: keyof AuditFilters, v: string) => setDraft((f) => ({ ...f, [k]: v }));
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters({ ...draft });
  };

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <p className="muted">
        {org ? `Changes in ${org.name}` : "Every organisation's changes"}, newest first. {myRole === "platform" ? "" : "Owners and admins read their organisation's log."}
      </p>
      <form className="card filters" onSubmit={apply} aria-label="Audit filters">
        <Field label="Actor" value={draft.actor} placeholder="user or key id" onChange={(e) => set("actor", e.target.value)} />
        <Field label="Action" value={draft.action} placeholder="e.g. POST /api/keys" onChange={(e) => set("action", e.target.value)} />
        <Field label="Target" value={draft.target} placeholder="id or email" onChange={(e) => set("target", e.target.value)} />
        <Select label="Result" value={draft.result} options={[["", "any"], ["success", "success"], ["failure", "failure"]]} onChange={(e) => set("result", e.target.value)} />
        <Field label="From" type="datetime-local" value={draft.since} onChange={(e) => set("since", e.target.value)} />
        <Field label="Until" type="datetime-local" value={draft.until} onChange={(e) => set("until", e.target.value)} />
        <div className="actions">
          <button type="submit">Filter</button>
          <button type="button" className="secondary" onClick={() => { setDraft(noFilters); setFilters(noFilters); }}>Clear</button>
        </div>
      </form>
      {error && <ErrorBox title="Could not load the audit log">{error}</ErrorBox>}
      {pages === null ? busy && <Loading what="Loading the audit log" /> : <AuditTable pages={pages} busy={busy} onMore={() => void load(pages)} />}
    </section>
  );
}

function AuditTable({ pages, busy, onMore }: { pages: Pages; busy: boolean; onMore: () => void }) {
  if (!pages.rows.length) return <Empty>No audit entries match.</Empty>;
  return (
    <>
      <div className="table-wrap">
        <table aria-label="Audit entries">
          <thead>
            <tr><th>When</th><th>Actor</th><th>Action</th><th>Target</th><th>Result</th><th>Client</th></tr>
          </thead>
          <tbody>
            {pages.rows.map((r) => (
              <tr key={r.id}>
                <td>{dateTime(r.at)}</td>
                <td><code>{r.actor}</code></td>
                <td>{r.action}</td>
                <td>{r.target ?? "—"}</td>
                <td><Badge state={r.result} /> <small className="muted">{r.status}</small></td>
                <td>{r.client_ip ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="actions">
        <span className="muted">{pages.rows.length} shown</span>
        {pages.next && <button type="button" className="secondary" disabled={busy} onClick={onMore}>{busy ? "Loading…" : "Load more"}</button>}
      </p>
    </>
  );
}
