// The organisation the dashboard is looking at: the signed-in user's organisations (a platform
// admin's: all of them, or "all organisations"), the one chosen in the header (kept in this
// browser), and the user's role in it. Keys, Usage, Members, Organisation and Audit follow it.
import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from "react";
import { unwrap } from "./api/client";
import type { ListOf, Member, Org, OrgRole } from "./api/views";
import { useSession } from "./auth";
import { useLoad } from "./lib/hooks";

export const ORG_KEY = "gpucloud.org";

/** A role in the chosen organisation; "platform" for a platform admin, null for none. */
export type MyRole = OrgRole | "platform" | null;

export interface OrgState {
  orgs: Org[];
  /** The chosen organisation, or null (a platform admin's "all organisations", or none yet). */
  org: Org | null;
  myRole: MyRole;
  loading: boolean;
  error: string | null;
  choose(orgId: string): void;
  reloadOrgs(): Promise<void>;
}

const OrgContext = createContext<OrgState | null>(null);

function kept(): string {
  try {
    return globalThis.localStorage?.getItem(ORG_KEY) ?? "";
  } catch {
    return "";
  }
}

/** The organisation to show: the kept one if still listed; else the first (but "all" for an admin). */
export function pickOrg(orgs: readonly Org[], wanted: string, isAdmin: boolean): Org | null {
  const found = orgs.find((o) => o.id === wanted);
  if (found) return found;
  return isAdmin ? null : (orgs[0] ?? null);
}

/** May this role change members (invite, change roles, remove)? */
export function canManage(role: MyRole): boolean {
  return role === "platform" || role === "owner" || role === "admin";
}

/** May this role read the organisation's usage (owners, admins, viewers; not plain members)? */
export function canSeeUsage(role: MyRole): boolean {
  return canManage(role) || role === "viewer";
}

export function OrgProvider({ children }: { children: ReactNode }) {
  const { client, isAdmin, kind, id } = useSession();
  const [wanted, setWanted] = useState(kept);
  // An API key that is not an admin's belongs to no one: it has no organisations to list.
  const listed = useLoad(async () => (kind === "user" || isAdmin ? unwrap<ListOf<Org>>(await client.GET("/api/orgs")).data : []), [client, kind, isAdmin]);
  const orgs = useMemo(() => listed.data ?? [], [listed.data]);
  const org = pickOrg(orgs, wanted, isAdmin);
  const members = useLoad(
    async () => (org && !isAdmin ? unwrap<ListOf<Member>>(await client.GET("/api/orgs/{org_id}/members", { params: { path: { org_id: org.id } } })).data : []),
    [client, org?.id, isAdmin],
  );
  const myRole: MyRole = isAdmin ? "platform" : (members.data?.find((m) => m.user_id === id)?.role ?? null);

  const choose = useCallback((orgId: string) => {
    setWanted(orgId);
    try {
      globalThis.localStorage?.setItem(ORG_KEY, orgId);
    } catch {
      /* not kept: the choice lasts as long as the page */
    }
  }, []);

  const value = useMemo(
    () => ({ orgs, org, myRole, loading: listed.loading || members.loading, error: listed.error, choose, reloadOrgs: listed.reload }),
    [orgs, org, myRole, listed.loading, members.loading, listed.error, choose, listed.reload],
  );
  return <OrgContext.Provider value={value}>{children}</OrgContext.Provider>;
}

export function useOrg(): OrgState {
  const state = useContext(OrgContext);
  if (!state) throw new Error("useOrg outside OrgProvider");
  return state;
}

/** The header's organisation switcher (hidden when there is nothing to choose between). */
export function OrgSwitcher() {
  const { orgs, org, choose } = useOrg();
  const { isAdmin } = useSession();
  if (!orgs.length) return null;
  return (
    <label className="org-switch">
      <span className="sr-only">Organisation</span>
      <select aria-label="Organisation" value={org?.id ?? ""} onChange={(e) => choose(e.target.value)}>
        {isAdmin && <option value="">All organisations</option>}
        {orgs.map((o) => (
          <option key={o.id} value={o.id}>
            {o.name}
          </option>
        ))}
      </select>
    </label>
  );
}
