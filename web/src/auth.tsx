// Who is signed in: the API key (kept in localStorage, sent only as a bearer token), the key's own
// record from GET /api/me, and the typed client that carries it.
import { createContext, type ReactNode, useCallback, useContext, useMemo, useRef, useState } from "react";
import { ApiError, type Client, makeClient, toApiError } from "./api/client";
import type { ApiKey } from "./api/views";

export const STORAGE_KEY = "gpucloud.apiKey";

export interface Session {
  me: ApiKey;
  isAdmin: boolean;
}

interface AuthState {
  client: Client;
  session: Session | null;
  /** Set when the server refused the stored key (it was revoked or expired meanwhile). */
  notice: string | null;
  login(key: string): Promise<void>;
  logout(notice?: string | null): void;
  /** Restores the session from localStorage; resolves false when there is none or it is refused. */
  restore(): Promise<boolean>;
}

const AuthContext = createContext<AuthState | null>(null);

function readStored(): string | null {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

/** GET /api/me with `key`: the key's record, or an ApiError saying why not. */
export async function whoAmI(client: Client): Promise<ApiKey> {
  const { data, error, response } = await client.GET("/api/me");
  if (!response.ok) {
    const err = toApiError(response.status, error);
    if (response.status === 401) {
      throw new ApiError(401, `This API key was not accepted: ${err.message}`, err.code);
    }
    throw err;
  }
  return data as ApiKey;
}

export function AuthProvider({ children, baseUrl = "" }: { children: ReactNode; baseUrl?: string }) {
  const keyRef = useRef<string | null>(readStored());
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const logout = useCallback((message: string | null = null) => {
    keyRef.current = null;
    try {
      globalThis.localStorage?.removeItem(STORAGE_KEY);
    } catch {
      /* storage disabled: nothing was kept */
    }
    setSession(null);
    setNotice(message);
  }, []);

  const client = useMemo(
    () =>
      makeClient(
        () => keyRef.current,
        () => {
          if (keyRef.current) logout("The server no longer accepts this API key (revoked or expired). Sign in again.");
        },
        baseUrl,
      ),
    [baseUrl, logout],
  );

  const start = useCallback(
    async (key: string) => {
      keyRef.current = key;
      try {
        const me = await whoAmI(client);
        setSession({ me, isAdmin: me.role === "admin" });
        setNotice(null);
      } catch (err) {
        keyRef.current = null;
        throw err;
      }
    },
    [client],
  );

  const login = useCallback(
    async (key: string) => {
      const trimmed = key.trim();
      if (!trimmed) throw new ApiError(0, "Paste an API key first.");
      await start(trimmed);
      try {
        globalThis.localStorage?.setItem(STORAGE_KEY, trimmed);
      } catch {
        /* storage disabled: the session lasts as long as the page */
      }
    },
    [start],
  );

  const restore = useCallback(async () => {
    const stored = readStored();
    if (!stored) return false;
    try {
      await start(stored);
      return true;
    } catch (err) {
      logout(err instanceof ApiError && err.status === 401 ? "Your saved API key is no longer accepted. Sign in again." : null);
      return false;
    }
  }, [start, logout]);

  const value = useMemo(
    () => ({ client, session, notice, login, logout, restore }),
    [client, session, notice, login, logout, restore],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
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
