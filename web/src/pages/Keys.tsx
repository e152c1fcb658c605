// API keys: list, create (the secret shown once), change limits, revoke. A platform admin sees
// every key (with an organisation chosen in the header, its keys; new keys belong to it); an
// organisation's members see and make their own user keys there, within the operator's defaults,
// and only a platform admin changes a key's limits (the server enforces all of it).
import { type FormEvent, useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { ApiKey, CreatedKey, ListOf } from "../api/views";
import { useSession } from "../auth";
import { ConfirmButton, CopyButton, Field, Select } from "../components/Controls";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { dateTime, num, usd } from "../lib/format";
import type { FieldErrors } from "../lib/forms";
import { type KeyForm, type LimitsForm, emptyKeyForm, limitsOf, parseKeyForm, parseLimitsPatch, withoutEmptyLimits } from "../lib/keyForm";
import { useLoad } from "../lib/hooks";
import { useOrg } from "../org";

export function Keys() {
  const { client, isAdmin } = useSession();
  const { org } = useOrg();
  const orgId = org?.id ?? null;
  const keys = useLoad(async () => {
    const all = unwrap<ListOf<ApiKey>>(await client.GET("/api/keys")).data;
    return orgId ? all.filter((k) => k.org_id === orgId) : all;
  }, [client, orgId]);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  async function revoke(key: ApiKey) {
    setActionError(null);
    try {
      unwrap(await client.DELETE("/api/keys/{key_id}", { params: { path: { key_id: key.id } } }));
      await keys.reload();
    } catch (err) {
      setActionError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys{org ? ` of ${org.name}` : ""}</h1>
      {created && <NewSecret created={created} onDone={() => setCreated(null)} />}
      {!isAdmin && <p className="muted">Your own keys in {org?.name ?? "this organisation"}. Their limits are the operator's defaults or lower; a platform admin changes them.</p>}
      <CreateKey
        onCreated={async (k) => {
          setCreated(k);
          await keys.reload();
        }}
      />
      {actionError && <ErrorBox title="The change failed">{actionError}</ErrorBox>}
      <Gate {...keys} what="keys">
        {(list) =>
          list.length ? (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Name</th><th>Prefix</th><th>Role</th><th>Limits</th><th>Models</th><th>Expires</th><th>State</th><th><span className="sr-only">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((k) => (
                    <KeyRow key={k.id} apiKey={k} editable={isAdmin} onRevoke={() => revoke(k)} onChanged={keys.reload} />
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No API keys yet. Create one above.</Empty>
          )
        }
      </Gate>
    </section>
  );
}

function limitsText(k: ApiKey): string {
  const parts = [
    k.rpm_limit !== null && `${num(k.rpm_limit)} rpm`,
    k.tpm_limit !== null && `${num(k.tpm_limit)} tpm`,
    k.max_concurrency !== null && `${num(k.max_concurrency)} at once`,
    k.token_quota !== null && `${num(k.token_quota)} tokens`,
    k.budget_usd !== null && `${usd(k.budget_usd)}`,
  ].filter(Boolean);
  if (!parts.length) return "unlimited";
  const period = k.budget_period ? ` per ${k.budget_period === "daily" ? "day" : "month"}` : "";
  return parts.join(", ") + (k.token_quota !== null || k.budget_usd !== null ? period : "");
}

function KeyRow({ apiKey: k, editable, onRevoke, onChanged }: { apiKey: ApiKey; editable: boolean; onRevoke: () => Promise<void>; onChanged: () => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  const revoked = k.revoked_at !== null;
  return (
    <>
      <tr className={revoked ? "dim" : undefined}>
        <td>{k.name}</td>
        <td><code>{k.prefix}…</code></td>
        <td>{k.role}</td>
        <td>{limitsText(k)}</td>
        <td>{k.allowed_models?.join(", ") ?? "all"}</td>
        <td>{k.expires_at ? dateTime(k.expires_at) : "never"}</td>
        <td><Badge state={revoked ? "revoked" : "active"} /></td>
        <td className="actions">
          {!revoked && (
            <>
              {editable && (
                <button type="button" className="secondary" onClick={() => setEditing((v) => !v)} aria-expanded={editing}>
                  Edit limits
                </button>
              )}
              <ConfirmButton label="Revoke" question={`Revoke "${k.name}"? Apps using it stop working at once.`} confirmLabel="Yes, revoke" onConfirm={onRevoke} />
            </>
          )}
        </td>
      </tr>
      {editing && (
        <tr>
          <td colSpan={8}>
            <EditLimits apiKey={k} onDone={async () => { setEditing(false); await onChanged(); }} />
          </td>
        </tr>
      )}
    </>
  );
}

function LimitFields({ form, errors, set, hint = "empty: unlimited" }: { form: LimitsForm; errors: FieldErrors; set: (k: keyof LimitsForm, v: string) => void; hint?: string }) {
  return (
    <div className="grid">
      <Field label="Requests per minute" inputMode="numeric" value={form.rpm_limit} error={errors.rpm_limit} hint={hint} onChange={(e) => set("rpm_limit", e.target.value)} />
      <Field label="Tokens per minute" inputMode="numeric" value={form.tpm_limit} error={errors.tpm_limit} hint={hint} onChange={(e) => set("tpm_limit", e.target.value)} />
      <Field label="Requests at once" inputMode="numeric" value={form.max_concurrency} error={errors.max_concurrency} hint={hint} onChange={(e) => set("max_concurrency", e.target.value)} />
      <Field label="Token quota" inputMode="numeric" value={form.token_quota} error={errors.token_quota} hint={hint} onChange={(e) => set("token_quota", e.target.value)} />
      <Field label="Budget (USD)" inputMode="decimal" value={form.budget_usd} error={errors.budget_usd} hint={hint} onChange={(e) => set("budget_usd", e.target.value)} />
      <Select label="Budget period" value={form.budget_period} error={errors.budget_period} options={[["", "key's lifetime"], ["daily", "daily"], ["monthly", "monthly"]]} onChange={(e) => set("budget_period", e.target.value)} />
    </div>
  );
}

function CreateKey({ onCreated }: { onCreated: (k: CreatedKey) => Promise<void> }) {
  const { client, isAdmin } = useSession();
  const { org } = useOrg();
  const [open, setOpen] = useState(false);
  // Members make user keys at normal or low priority; the server refuses more.
  const priorities = isAdmin ? ["high", "normal", "low"] : ["normal", "low"];
  const [form, setForm] = useState<KeyForm>(emptyKeyForm);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof KeyForm, v: string) => setForm((f) => ({ ...f, [k]: v }));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const parsed = parseKeyForm(form);
    if (!parsed.ok) {
      setErrors(parsed.errors);
      return;
    }
    setErrors({});
    setError(null);
    setBusy(true);
    try {
      const own = isAdmin ? parsed.value : withoutEmptyLimits(parsed.value);
      const body = org ? { ...own, org_id: org.id } : own;
      const created = unwrap<CreatedKey>(await client.POST("/api/keys", { body }));
      setForm(emptyKeyForm);
      setOpen(false);
      await onCreated(created);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  if (!open) {
    return (
      <p>
        <button type="button" onClick={() => setOpen(true)}>Create a key</button>
      </p>
    );
  }
  return (
    <form className="card" onSubmit={submit} aria-label="Create an API key" noValidate>
      <h2>New API key</h2>
      {error && <ErrorBox title="Could not create the key">{error}</ErrorBox>}
      <div className="grid">
        <Field label="Name" value={form.name} error={errors.name} autoFocus required onChange={(e) => set("name", e.target.value)} />
        {isAdmin && <Select label="Role" value={form.role} options={[["user", "user: inference, own usage and jobs"], ["admin", "admin: everything"]]} onChange={(e) => set("role", e.target.value)} />}
        <Field label="Expires" type="datetime-local" value={form.expires_at} error={errors.expires_at} hint="empty: never (your local time)" onChange={(e) => set("expires_at", e.target.value)} />
        <Field label="Allowed models" value={form.allowed_models} error={errors.allowed_models} hint="comma-separated; empty: all" onChange={(e) => set("allowed_models", e.target.value)} />
        <Select label="Default priority" value={form.default_priority} options={priorities} onChange={(e) => set("default_priority", e.target.value)} />
        <Select label="Highest priority" value={form.max_priority} error={errors.max_priority} options={[["", "same as default"], ...priorities]} onChange={(e) => set("max_priority", e.target.value)} />
      </div>
      <h3>Limits</h3>
      <LimitFields form={form} errors={errors} set={set} hint={isAdmin ? "empty: unlimited" : "empty: the operator's default"} />
      <div className="actions">
        <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create key"}</button>
        <button type="button" className="secondary" onClick={() => setOpen(false)}>Cancel</button>
      </div>
    </form>
  );
}

function NewSecret({ created, onDone }: { created: CreatedKey; onDone: () => void }) {
  return (
    <div className="card secret" role="region" aria-label="New key secret">
      <h2>Key "{created.name}" created</h2>
      <p className="warning">
        Copy this secret now. It is shown only this once: the server keeps only its digest and cannot show it again.
      </p>
      <div className="secret-row">
        <input readOnly aria-label="New API key secret" value={created.key} data-testid="new-secret" onFocus={(e) => e.currentTarget.select()} />
        <CopyButton text={created.key} />
      </div>
      <button type="button" className="secondary" onClick={onDone}>I have stored it</button>
    </div>
  );
}

function EditLimits({ apiKey, onDone }: { apiKey: ApiKey; onDone: () => Promise<void> }) {
  const { client } = useSession();
  const [form, setForm] = useState<LimitsForm>(limitsOf(apiKey));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const parsed = parseLimitsPatch(form, apiKey);
    if (!parsed.ok) {
      setErrors(parsed.errors);
      return;
    }
    setErrors({});
    try {
      if (Object.keys(parsed.value).length) {
        unwrap(await client.PATCH("/api/keys/{key_id}", { params: { path: { key_id: apiKey.id } }, body: parsed.value }));
      }
      await onDone();
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <form onSubmit={submit} aria-label={`Limits of ${apiKey.name}`} noValidate>
      {error && <ErrorBox title="Could not save">{error}</ErrorBox>}
      <LimitFields form={form} errors={errors} set={(k, v) => setForm((f) => ({ ...f, [k]: v }))} />
      <div className="actions">
        <button type="submit">Save limits</button>
      </div>
    </form>
  );
}
