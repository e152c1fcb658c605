// The chosen organisation: its limits (shared by all its keys, on top of each key's own; platform
// admins change them) and its usage from the ledger (owners, admins and viewers read it).
import { type FormEvent, useMemo, useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { Org, UsageReport } from "../api/views";
import { useSession } from "../auth";
import { Stat } from "../components/Charts";
import { Field, Select } from "../components/Controls";
import { Empty, ErrorBox, Gate } from "../components/Status";
import { num, usd } from "../lib/format";
import type { FieldErrors } from "../lib/forms";
import { useLoad } from "../lib/hooks";
import { type OrgLimitsForm, orgLimitsOf, orgLimitsText, parseOrgLimits } from "../lib/orgLimits";
import { breakdown } from "../lib/usage";
import { canSeeUsage, useOrg } from "../org";
import { NoOrg } from "./Members";

export function Organization() {
  const { org, myRole, reloadOrgs } = useOrg();
  if (!org) return <NoOrg />;
  return (
    <section aria-labelledby="org-title">
      <h1 id="org-title">{org.name}</h1>
      <p className="muted">
        Organisation <code>{org.id}</code>. Its limits apply across all its keys and gateways, on top of each key's own.
      </p>
      <Limits key={org.id} org={org} editable={myRole === "platform"} onSaved={reloadOrgs} />
      {canSeeUsage(myRole) ? <OrgUsage orgId={org.id} /> : <p className="muted">Owners, admins and viewers see the organisation's usage.</p>}
    </section>
  );
}

function Limits({ org, editable, onSaved }: { org: Org; editable: boolean; onSaved: () => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  return (
    <div className="card">
      <div className="card-head">
        <h2>Limits</h2>
        {editable && !editing && <button type="button" className="secondary" onClick={() => setEditing(true)}>Edit limits</button>}
      </div>
      <dl className="facts">
        <div><dt>Limits</dt><dd data-testid="org-limits">{orgLimitsText(org)}</dd></div>
        <div><dt>Allowed models</dt><dd>{org.allowed_models?.join(", ") ?? "all"}</dd></div>
      </dl>
      {!editable && <p className="muted">Only a platform admin changes these.</p>}
      {editing && <EditLimits org={org} onDone={async () => { setEditing(false); await onSaved(); }} onCancel={() => setEditing(false)} />}
    </div>
  );
}

function EditLimits({ org, onDone, onCancel }: { org: Org; onDone: () => Promise<void>; onCancel: () => void }) {
  const { client } = useSession();
  const [form, setForm] = useState<OrgLimitsForm>(orgLimitsOf(org));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const set = (k: keyof OrgLimitsForm, v: string) => setForm((f) => ({ ...f, [k]: v }));
  const hint = "empty: unlimited";

  async function submit(e: FormEvent) {
    e.preventDefault();
    const parsed = parseOrgLimits(form, org);
    if (!parsed.ok) return setErrors(parsed.errors);
    setErrors({});
    try {
      if (Object.keys(parsed.value).length) {
        unwrap(await client.PATCH("/api/orgs/{org_id}", { params: { path: { org_id: org.id } }, body: parsed.value }));
      }
      await onDone();
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <form onSubmit={submit} aria-label={`Limits of ${org.name}`} noValidate>
      {error && <ErrorBox title="Could not save">{error}</ErrorBox>}
      <div className="grid">
        <Field label="Requests per minute" inputMode="numeric" value={form.rpm_limit} error={errors.rpm_limit} hint={hint} onChange={(e) => set("rpm_limit", e.target.value)} />
        <Field label="Tokens per minute" inputMode="numeric" value={form.tpm_limit} error={errors.tpm_limit} hint={hint} onChange={(e) => set("tpm_limit", e.target.value)} />
        <Field label="Token quota" inputMode="numeric" value={form.token_quota} error={errors.token_quota} hint={hint} onChange={(e) => set("token_quota", e.target.value)} />
        <Field label="Budget (USD)" inputMode="decimal" value={form.budget_usd} error={errors.budget_usd} hint={hint} onChange={(e) => set("budget_usd", e.target.value)} />
        <Select label="Budget period" value={form.budget_period} options={[["", "organisation's lifetime"], ["daily", "daily"], ["monthly", "monthly"]]} onChange={(e) => set("budget_period", e.target.value)} />
        <Field label="Allowed models" value={form.allowed_models} hint="comma-separated; empty: any (each key may narrow it)" onChange={(e) => set("allowed_models", e.target.value)} />
      </div>
      <div className="actions">
        <button type="submit">Save limits</button>
        <button type="button" className="secondary" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

function OrgUsage({ orgId }: { orgId: string }) {
  const { client } = useSession();
  const query = useMemo(() => ({ org_id: orgId, group_by: ["org", "model"] as ("org" | "model")[] }), [orgId]);
  const report = useLoad(async () => unwrap<UsageReport>(await client.GET("/api/usage", { params: { query } })), [client, query]);
  return (
    <>
      <h2>Usage</h2>
      <Gate {...report} what="usage">
        {(r) => (
          <>
            <div className="stats">
              <Stat label="Requests" value={num(r.totals.requests)} />
              <Stat label="Tokens" value={num(r.totals.total_tokens)} />
              <Stat label="Cost" value={usd(r.totals.cost_usd)} />
            </div>
            {r.data.length ? (
              <div className="table-wrap">
                <table aria-label="Usage by model">
                  <thead><tr><th>Model</th><th className="num">Requests</th><th className="num">Tokens</th><th className="num">Cost</th></tr></thead>
                  <tbody>
                    {breakdown(r.data, "model").map((b) => (
                      <tr key={b.name}><td>{b.name}</td><td className="num">{num(b.requests)}</td><td className="num">{num(b.total_tokens)}</td><td className="num">{usd(b.cost_usd)}</td></tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : (
              <Empty>No usage yet. Requests made with the organisation's keys appear here once they finish.</Empty>
            )}
          </>
        )}
      </Gate>
    </>
  );
}
