// What the browser keeps between visits, and the sign-in hand-offs that arrive in the address:
// an API key (localStorage, as before), or a signed-in user's short-lived access token with its
// expiry; `?sso_code=` / `?sso_error=` (the OIDC callback's redirect) and `?invite=` (an invitation
// link). Nothing here talks to the server.

export const STORAGE_KEY = "gpucloud.apiKey";
export const TOKEN_KEY = "gpucloud.accessToken";

/** A credential the dashboard sends as its bearer token. */
export type Credential = { kind: "key"; secret: string } | { kind: "user"; token: string; expiresAt: number };

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** The kept credential: a user's token that has not expired yet, else an API key, else null. */
export function readCredential(now = Date.now()): Credential | null {
  const store = storage();
  if (!store) return null;
  try {
    const raw = store.getItem(TOKEN_KEY);
    if (raw) {
      const parsed = JSON.parse(raw) as { token?: unknown; expiresAt?: unknown };
      if (typeof parsed.token === "string" && typeof parsed.expiresAt === "number" && parsed.expiresAt > now) {
        return { kind: "user", token: parsed.token, expiresAt: parsed.expiresAt };
      }
      store.removeItem(TOKEN_KEY); // expired or unreadable: useless
    }
    const secret = store.getItem(STORAGE_KEY);
    return secret ? { kind: "key", secret } : null;
  } catch {
    return null;
  }
}

/** Keeps `cred` (replacing any other kind), or forgets every credential when null. */
export function writeCredential(cred: Credential | null): void {
  const store = storage();
  if (!store) return; // storage disabled: the session lasts as long as the page
  try {
    store.removeItem(TOKEN_KEY);
    store.removeItem(STORAGE_KEY);
    if (cred?.kind === "key") store.setItem(STORAGE_KEY, cred.secret);
    if (cred?.kind === "user") store.setItem(TOKEN_KEY, JSON.stringify({ token: cred.token, expiresAt: cred.expiresAt }));
  } catch {
    /* quota or privacy mode: nothing kept */
  }
}

export function bearerOf(cred: Credential | null): string | null {
  if (!cred) return null;
  return cred.kind === "key" ? cred.secret : cred.token;
}

/**
 * Milliseconds from `now` until the token should be refreshed: a minute before it expires, or at
 * 80% of its life when that is shorter than five minutes (so a short token is not refreshed
 * constantly, nor too late). Never negative.
 */
export function refreshDelay(expiresAt: number, lifetimeMs: number, now = Date.now()): number {
  const margin = lifetimeMs < 5 * 60_000 ? lifetimeMs * 0.2 : 60_000;
  return Math.max(0, expiresAt - margin - now);
}

export interface Handoff {
  ssoCode: string | null;
  ssoError: string | null;
  invite: string | null;
}

/** The sign-in hand-offs in a query string (`location.search`). */
export function readHandoff(search: string): Handoff {
  const q = new URLSearchParams(search);
  return { ssoCode: q.get("sso_code"), ssoError: q.get("sso_error"), invite: q.get("invite") };
}

/** `url` without the hand-off parameters (the code is single-use; the token is a secret). */
export function withoutHandoff(url: string): string {
  const u = new URL(url);
  for (const name of ["sso_code", "sso_error", "invite"]) u.searchParams.delete(name);
  return u.pathname + (u.search === "?" ? "" : u.search) + u.hash;
}

/** Removes the hand-off parameters from the address bar without a new history entry. */
export function clearHandoff(): void {
  const loc = globalThis.location;
  if (!loc) return;
  const clean = withoutHandoff(loc.href);
  if (clean !== loc.pathname + loc.search + loc.hash) globalThis.history.replaceState(null, "", clean);
}

/** Words for an `sso_error` code from the callback. */
export function ssoErrorText(code: string): string {
  // The reasons the server's callback gives (gpucloud.accounts.oidc and .sso).
  const known: Record<string, string> = {
    access_denied: "The identity provider refused the sign-in.",
    provider_error: "The identity provider refused or failed the sign-in.",
    provider_unreachable: "The identity provider could not be reached. Try again shortly.",
    invalid_id_token: "The identity provider's answer could not be verified.",
    invalid_state: "The sign-in took too long or was started elsewhere. Try again.",
    no_email: "The identity provider did not share an email address.",
    email_not_verified: "Your email address is not verified with the identity provider.",
    domain_not_allowed: "Accounts with this email domain may not sign in here.",
    account_disabled: "This account is disabled.",
    sso_disabled: "Single sign-on is not configured on this server.",
  };
  return known[code] ?? `Single sign-on failed (${code}). Try again, or sign in with your password.`;
}
