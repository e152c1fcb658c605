// The sign-in and invitation routes, by name: `/api/auth/config`, the OIDC code exchange,
// accepting an invitation and an organisation's invitations. Calls go through the same client (and
// so carry the same bearer token) as every other call.
import { type Client, unwrap } from "./client";
import type { AccessToken, OrgRole } from "./views";

export interface AuthConfig {
  password: boolean;
  oidc: { enabled: boolean; name: string | null };
}

export interface Invitation {
  id: string;
  email: string;
  role: OrgRole;
  expires_at: string;
  created_at?: string;
}

/** The create call's answer: the only one that carries the link (its token is a secret). */
export interface CreatedInvitation extends Invitation {
  url: string;
  token: string;
}

type Result = { data?: unknown; error?: unknown; response: Response };
interface Untyped {
  GET(path: string, init?: object): Promise<Result>;
  POST(path: string, init?: object): Promise<Result>;
  DELETE(path: string, init?: object): Promise<Result>;
}

// These routes are served by the accounts package; reaching them through the same client keeps
// its middleware (the bearer token, signing out on a 401).
function raw(client: Client): Untyped {
  return client as unknown as Untyped;
}

/** How people may sign in here; password only when the server cannot say. */
export async function authConfig(client: Client): Promise<AuthConfig> {
  try {
    const cfg = unwrap(await raw(client).GET("/api/auth/config")) as Partial<AuthConfig>;
    return { password: cfg.password ?? true, oidc: { enabled: cfg.oidc?.enabled === true, name: cfg.oidc?.name ?? null } };
  } catch {
    return { password: true, oidc: { enabled: false, name: null } };
  }
}

export async function exchangeSsoCode(client: Client, code: string): Promise<AccessToken> {
  return unwrap(await raw(client).POST("/api/auth/oidc/exchange", { body: { code } })) as AccessToken;
}

export async function acceptInvitation(client: Client, token: string, password: string): Promise<AccessToken> {
  return unwrap(await raw(client).POST("/api/auth/invitations/accept", { body: { token, password } })) as AccessToken;
}

export async function listInvitations(client: Client, orgId: string): Promise<Invitation[]> {
  const list = unwrap(await raw(client).GET(`/api/orgs/${encodeURIComponent(orgId)}/invitations`)) as { data: Invitation[] };
  return list.data;
}

export async function invite(client: Client, orgId: string, email: string, role: OrgRole): Promise<CreatedInvitation> {
  return unwrap(await raw(client).POST(`/api/orgs/${encodeURIComponent(orgId)}/invitations`, { body: { email, role } })) as CreatedInvitation;
}

export async function revokeInvitation(client: Client, orgId: string, invId: string): Promise<void> {
  unwrap(await raw(client).DELETE(`/api/orgs/${encodeURIComponent(orgId)}/invitations/${encodeURIComponent(invId)}`));
}
