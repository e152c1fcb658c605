// The sign-in and invitation calls the pages share: how people may sign in, the single sign-on
// code exchange, accepting an invitation, and an organisation's invitations.
import { type Client, unwrap } from "./client";
import type { AccessToken, AuthConfig, Invitation, ListOf, OrgRole } from "./views";

export type { AuthConfig, Invitation } from "./views";

/** The create call's answer: the only one that carries the link (its token is a secret). */
export type CreatedInvitation = Invitation & { url: string; token: string };

/** How people may sign in here; password only when the server cannot say. */
export async function authConfig(client: Client): Promise<AuthConfig> {
  try {
    return unwrap<AuthConfig>(await client.GET("/api/auth/config"));
  } catch {
    return { password: true, oidc: { enabled: false, name: null } };
  }
}

export async function exchangeSsoCode(client: Client, code: string): Promise<AccessToken> {
  return unwrap<AccessToken>(await client.POST("/api/auth/oidc/exchange", { body: { code } }));
}

export async function acceptInvitation(client: Client, token: string, password: string): Promise<AccessToken> {
  return unwrap<AccessToken>(await client.POST("/api/auth/invitations/accept", { body: { token, password } }));
}

const orgPath = (orgId: string) => ({ params: { path: { org_id: orgId } } });

export async function listInvitations(client: Client, orgId: string): Promise<Invitation[]> {
  return unwrap<ListOf<Invitation>>(await client.GET("/api/orgs/{org_id}/invitations", orgPath(orgId))).data;
}

export async function invite(client: Client, orgId: string, email: string, role: OrgRole): Promise<CreatedInvitation> {
  const created = unwrap<Invitation>(await client.POST("/api/orgs/{org_id}/invitations", { ...orgPath(orgId), body: { email, role } }));
  if (!created.token || !created.url) throw new Error("The server did not send the invitation's link.");
  return { ...created, token: created.token, url: created.url };
}

export async function revokeInvitation(client: Client, orgId: string, invId: string): Promise<void> {
  unwrap(await client.DELETE("/api/orgs/{org_id}/invitations/{invitation_id}", { params: { path: { org_id: orgId, invitation_id: invId } } }));
}
