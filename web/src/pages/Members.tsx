// The chosen organisation's members: everyone reads the list; owners and admins (and platform
// admins) invite people (the link is shown once), revoke pending invitations, change roles and
// remove members. Only an owner grants or takes the owner role: the server says so when refused.
import { type FormEvent, useState } from "react";
import { type CreatedInvitation, type Invitation, invite, listInvitations, revokeInvitation } from "../api/accounts";
import { describeError, unwrap } from "../api/client";
import type { ListOf, Member, Org, OrgRole } from "../api/views";
import { useSession } from "../auth";
import { ConfirmButton, CopyButton, Field, Select } from "../components/Controls";
import { Badge, Empty, ErrorBox, Gate } from "../components/Status";
import { dateTime } from "../lib/format";
import { useLoad } from "../lib/hooks";
import { canManage, useOrg } from "../org";

export const ROLES: [OrgRole, string][] = [
  ["owner", "owner: everything, including owners"],
  ["admin", "admin: members, keys, audit"],
  ["member", "member: uses the organisation"],
  ["viewer", "viewer: reads, changes nothing"],
];

/** An invitation link that opens this dashboard, whatever address the server put in `url`. */
export function inviteLink(created: Pick<CreatedInvitation, "url" | "token">, origin: string): string {
  if (/^https?:\/\//.test(created.url)) return created.url;
  if (created.url.startsWith("/")) return origin + created.url;
  return `${origin}/?invite=${encodeURIComponent(created.token)}`;
}

export function Members() {
  const { org, myRole } = useOrg();
  if (!org) return <NoOrg />;
  return <OrgMembers key={org.id} org={org} manage={canManage(myRole)} />;
}

export function NoOrg() {
  return (
    <section>
      <h1>Organisation</h1>
      <Empty>Choose an organisation in the header.</Empty>
    </section>
  );
}

function OrgMembers({ org, manage }: { org: Org; manage: boolean }) {
  const { client, id: me } = useSession();
  const members = useLoad(async () => unwrap<ListOf<Member>>(await client.GET("/api/orgs/{org_id}/members", { params: { path: { org_id: org.id } } })).data, [client, org.id]);
  const invitations = useLoad(async () => (manage ? listInvitations(client, org.id) : []), [client, org.id, manage]);
  const [actionError, setActionError] = useState<string | null>(null);

  async function act(change: () => Promise<unknown>) {
    setActionError(null);
    try {
      await change();
    } catch (err) {
      setActionError(describeError(err));
    }
    await members.reload();
  }
  const setRole = (m: Member, role: string) =>
    act(async () => unwrap(await client.PATCH("/api/orgs/{org_id}/members/{user_id}", { params: { path: { org_id: org.id, user_id: m.user_id } }, body: { role } })));
  const remove = (m: Member) =>
    act(async () => unwrap(await client.DELETE("/api/orgs/{org_id}/members/{user_id}", { params: { path: { org_id: org.id, user_id: m.user_id } } })));

  return (
    <section aria-labelledby="members-title">
      <h1 id="members-title">Members of {org.name}</h1>
      {!manage && <p className="muted">Read-only: owners and admins change members.</p>}
      {manage && <InviteForm orgId={org.id} onInvited={invitations.reload} />}
      {actionError && <ErrorBox title="The change failed">{actionError}</ErrorBox>}
      <Gate {...members} what="members">
        {(list) =>
          list.length ? (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr><th>Email</th><th>Role</th><th>Since</th><th><span className="sr-only">Actions</span></th></tr>
                </thead>
                <tbody>
                  {list.map((m) => (
                    <tr key={m.user_id} data-testid={`member-${m.email ?? m.user_id}`}>
                      <td>{m.email ?? <code>{m.user_id}</code>}{m.user_id === me && <small className="muted"> (you)</small>}</td>
                      <td>
                        {manage ? (
                          <select aria-label={`Role of ${m.email ?? m.user_id}`} value={m.role} onChange={(e) => void setRole(m, e.target.value)}>
                            {ROLES.map(([r]) => <option key={r} value={r}>{r}</option>)}
                          </select>
                        ) : (
                          m.role
                        )}
                      </td>
                      <td>{dateTime(m.created_at)}</td>
                      <td className="actions">
                        {manage && <ConfirmButton label="Remove" question={`Remove ${m.email ?? m.user_id} from ${org.name}?`} confirmLabel="Yes, remove" onConfirm={() => remove(m)} />}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No members yet.</Empty>
          )
        }
      </Gate>
      {manage && <Pending orgId={org.id} invitations={invitations} />}
    </section>
  );
}

function InviteForm({ orgId, onInvited }: { orgId: string; onInvited: () => Promise<void> }) {
  const { client } = useSession();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<OrgRole>("member");
  const [created, setCreated] = useState<CreatedInvitation | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setCreated(await invite(client, orgId, email.trim(), role));
      setEmail("");
      await onInvited();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      {created && <InviteLink created={created} onDone={() => setCreated(null)} />}
      <form className="card filters" onSubmit={submit} aria-label="Invite someone">
        <Field label="Email to invite" type="email" value={email} required onChange={(e) => setEmail(e.target.value)} />
        <Select label="Role" value={role} options={ROLES} onChange={(e) => setRole(e.target.value as OrgRole)} />
        <div className="actions">
          <button type="submit" disabled={busy || !email.trim()}>{busy ? "Inviting…" : "Invite"}</button>
        </div>
        {error && <ErrorBox title="Could not invite">{error}</ErrorBox>}
      </form>
    </>
  );
}

function InviteLink({ created, onDone }: { created: CreatedInvitation; onDone: () => void }) {
  const link = inviteLink(created, globalThis.location?.origin ?? "");
  return (
    <div className="card secret" role="region" aria-label="Invitation link">
      <h2>Invitation for {created.email} ({created.role})</h2>
      <p className="warning">
        Send this link to {created.email}. It is shown only this once, and works until {dateTime(created.expires_at)}.
      </p>
      <div className="secret-row">
        <input readOnly aria-label="Invitation link" value={link} data-testid="new-secret" onFocus={(e) => e.currentTarget.select()} />
        <CopyButton text={link} />
      </div>
      <button type="button" className="secondary" onClick={onDone}>Done</button>
    </div>
  );
}

function Pending({ orgId, invitations }: { orgId: string; invitations: ReturnType<typeof useLoad<Invitation[]>> }) {
  const { client } = useSession();
  const [error, setError] = useState<string | null>(null);
  async function revoke(inv: Invitation) {
    setError(null);
    try {
      await revokeInvitation(client, orgId, inv.id);
    } catch (err) {
      setError(describeError(err));
    }
    await invitations.reload();
  }
  return (
    <>
      <h2>Invitations</h2>
      {error && <ErrorBox title="Could not revoke">{error}</ErrorBox>}
      <Gate {...invitations} what="invitations">
        {(list) =>
          list.length ? (
            <div className="table-wrap">
              <table aria-label="Invitations">
                <thead>
                  <tr><th>Email</th><th>Role</th><th>State</th><th>Expires</th><th><span className="sr-only">Actions</span></th></tr>
                </thead>
                <tbody>
                  {list.map((inv) => (
                    <tr key={inv.id}>
                      <td>{inv.email}</td>
                      <td>{inv.role}</td>
                      <td><Badge state={inv.status} /></td>
                      <td>{dateTime(inv.expires_at)}</td>
                      <td className="actions">
                        {inv.status === "pending" && <ConfirmButton label="Revoke" question={`Revoke the invitation of ${inv.email}?`} confirmLabel="Yes, revoke" onConfirm={() => revoke(inv)} />}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No invitations yet.</Empty>
          )
        }
      </Gate>
    </>
  );
}
