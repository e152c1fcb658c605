// Who is signed in, and with what: an API key (kept in localStorage, checked with GET /api/me), or
// a user's short-lived access token from email + password, single sign-on or an accepted
// invitation (checked with GET /api/auth/me, refreshed before it expires, revoked on sign-out).
// The typed client carries whichever it is as the bearer token; it is never logged.
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import { exchangeSsoCode } from "./api/accounts";
import { ApiError, type Client, makeClient, toApiError, unwrap } from "./api/client";
import type { AccessToken, ApiKey, User } from "./api/views";
import {
  type Credential,
  bearerOf,
  clearHandoff,
  readCredential,
  readHandoff,
  refreshDelay,
  ssoErrorText,
  writeCredential,
} from "./lib/session";

export { STORAGE_KEY, TOKEN_KEY } from "./lib/session";

export interface Session {
  kind: "key" | "user";
  id: string;
  /** The key's name, or the user's email. */
  name: string;
  /** Shown next to the name: the key's role, or "platform admin" / "user". */
  role: string;
  /** A platform admin: an admin API key, or a user with is_admin. */
  isAdmin: boolean;
}

interface AuthState {
  client: Client;
  session: Session | null;
  /** Why the last session ended or a sign-in hand-off failed, for the sign-in page. */
  notice: string | null;
  login(key: string): Promise<void>;
  loginPassword(email: string, password: string): Promise<void>;
  /** Starts a user's session from a token the server granted (SSO, an accepted invitation). */
  loginWithToken(grant: AccessToken): Promise<void>;
  logout(notice?: string | null): void;
  /** Restores the session (an SSO hand-off first, then the kept credential); false when none. */
  restore(): Promise<boolean>;
}

const AuthContext = createContext<AuthState | null>(null);

/** GET /api/me with an API key: the key's record, or an ApiError saying why not. */
export async function whoAmI(client: Client): Promise<ApiKey> {
  const { data, error, response } = await client.GET("/api/me");
  if (!response.ok) {
    const err = toApiError(response.status, error);
    if (response.status === 401) throw new ApiError(401, `This API key was not accepted: ${err.message}`, err.code);
    throw err;
  }
  return data as ApiKey;
}

function keySession(me: ApiKey): Session {
  return { kind: "key", id: me.id, name: me.name, role: me.role, isAdmin: me.role === "admin" };
}

function userSession(me: User): Session {
  return { kind: "user", id: me.id, name: me.email, role: me.is_admin ? "platform admin" : "user", isAdmin: me.is_admin };
}

type UserCredential = Extract<Credential, { kind: "user" }>;

function grantToCredential(grant: AccessToken): UserCredential {
  return { kind: "user", token: grant.access_token, expiresAt: Date.now() + grant.expires_in * 1000 };
}

const ENDED = {
  key: "The server no longer accepts this API key (revoked or expired). Sign in again.",
  user: "Your session ended (it expired, or was signed out or disabled). Sign in again.",
};

export function AuthProvider({ children, baseUrl = "" }: { children: ReactNode; baseUrl?: string }) {
  const credRef = useRef<Credential | null>(readCredential());
  // A credential being checked: its 401 is a failed sign-in (said by the form), not a session ending.
  const checkingRef = useRef<Credential | null>(null);
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // Changes with every new access token, so the refresh timer is set again.
  const [expiry, setExpiry] = useState<{ at: number; lifetime: number } | null>(null);

  const forget = useCallback((message: string | null) => {
    credRef.current = null;
    writeCredential(null);
    setExpiry(null);
    setSession(null);
    setNotice(message);
  }, []);

  const client = useMemo(
    () =>
      makeClient(
        () => bearerOf(credRef.current),
        () => {
          const cred = credRef.current;
          if (cred && cred !== checkingRef.current) forget(ENDED[cred.kind]);
        },
        baseUrl,
      ),
    [baseUrl, forget],
  );

  const start = useCallback(
    async (cred: Credential) => {
      credRef.current = cred;
      checkingRef.current = cred;
      try {
        const next = cred.kind === "key" ? keySession(await whoAmI(client)) : userSession(unwrap<User>(await client.GET("/api/auth/me")));
        writeCredential(cred);
        if (cred.kind === "user") setExpiry({ at: cred.expiresAt, lifetime: cred.expiresAt - Date.now() });
        setSession(next);
        setNotice(null);
      } catch (err) {
        credRef.current = null;
        throw err;
      } finally {
        checkingRef.current = null;
      }
    },
    [client],
  );

  const login = useCallback(
    async (key: string) => {
      const trimmed = key.trim();
      if (!trimmed) throw new ApiError(0, "Paste an API key first.");
      await start({ kind: "key", secret: trimmed });
    },
    [start],
  );

  const loginWithToken = useCallback(async (grant: AccessToken) => start(grantToCredential(grant)), [start]);

  const loginPassword = useCallback(
    async (email: string, password: string) => {
      if (!email.trim() || !password) throw new ApiError(0, "Enter your email and password.");
      const grant = unwrap<AccessToken>(await client.POST("/api/auth/login", { body: { email: email.trim(), password } }));
      await loginWithToken(grant);
    },
    [client, loginWithToken],
  );

  const logout = useCallback(
    (message: string | null = null) => {
      const cred = credRef.current;
      forget(message);
      if (cred?.kind === "user") {
        // Revoke the token server-side; the page is signed out whatever the answer.
        void client.POST("/api/auth/logout", { headers: { Authorization: `Bearer ${cred.token}` } }).catch(() => undefined);
      }
    },
    [client, forget],
  );

  const restore = useCallback(async () => {
    const handoff = readHandoff(globalThis.location?.search ?? "");
    if (handoff.ssoError) {
      clearHandoff();
      forget(ssoErrorText(handoff.ssoError));
      return false;
    }
    try {
      if (handoff.ssoCode) {
        clearHandoff(); // single-use: never left in the address bar or history
        await loginWithToken(await exchangeSsoCode(client, handoff.ssoCode));
        return true;
      }
      const stored = credRef.current;
      if (!stored) return false;
      await start(stored);
      return true;
    } catch (err) {
      const refused = err instanceof ApiError && err.status === 401;
      const message = handoff.ssoCode ? `Single sign-on failed: ${err instanceof Error ? err.message : "try again"}` : refused ? "Your saved sign-in is no longer accepted. Sign in again." : null;
      forget(message);
      return false;
    }
  }, [client, start, loginWithToken, forget]);

  useRefresh(client, credRef, expiry, setExpiry, forget);

  const value = useMemo(
    () => ({ client, session, notice, login, loginPassword, loginWithToken, logout, restore }),
    [client, session, notice, login, loginPassword, loginWithToken, logout, restore],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

/** Swaps a user's access token for a fresh one (POST /api/auth/refresh) shortly before it expires. */
function useRefresh(
  client: Client,
  credRef: { current: Credential | null },
  expiry: { at: number; lifetime: number } | null,
  setExpiry: (e: { at: number; lifetime: number }) => void,
  forget: (message: string | null) => void,
) {
  useEffect(() => {
    if (!expiry) return;
    const timer = setTimeout(async () => {
      const current = credRef.current;
      if (current?.kind !== "user") return;
      const cred: UserCredential = current;
      try {
        const next = grantToCredential(unwrap<AccessToken>(await client.POST("/api/auth/refresh")));
        if (credRef.current !== cred) return; // signed out (or in again) meanwhile
        credRef.current = next;
        writeCredential(next);
        setExpiry({ at: next.expiresAt, lifetime: next.expiresAt - Date.now() });
      } catch (err) {
        if (credRef.current !== cred) return;
        // A refusal signs out (the client's 401 handler); a network blip retries while time is left.
        if (cred.expiresAt - Date.now() > 5_000 && !(err instanceof ApiError)) setExpiry({ at: cred.expiresAt, lifetime: 25_000 });
        else forget(ENDED.user);
      }
    }, refreshDelay(expiry.at, expiry.lifetime));
    return () => clearTimeout(timer);
  }, [client, credRef, expiry, setExpiry, forget]);
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}

/** The signed-in session (pages render only inside one). */
export function useSession(): Session & { client: Client } {
  const { session, client } = useAuth();
  if (!session) throw new Error("useSession without a session");
  return { ...session, client };
}
