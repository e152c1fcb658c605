// Sign in: with email and password (or single sign-on when the server has it configured) for
// people, or with an API key for automation users. The key is checked with GET /api/me and kept in
// this browser's localStorage; a user's short-lived access token is kept and refreshed likewise.
import { type FormEvent, useEffect, useState } from "react";
import { type AuthConfig, authConfig } from "../api/accounts";
import { describeError } from "../api/client";
import { useAuth } from "../auth";
import { ErrorBox } from "../components/Status";
import { Field } from "../components/Controls";

/** Runs `act` with busy and error states, for the two forms. */
function useSubmit(act: () => Promise<void>) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await act();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }
  return { error, busy, submit };
}

export function Login() {
  const { client, notice } = useAuth();
  const [config, setConfig] = useState<AuthConfig | null>(null);
  useEffect(() => {
    let alive = true;
    void authConfig(client).then((c) => alive && setConfig(c));
    return () => {
      alive = false;
    };
  }, [client]);

  return (
    <main className="login">
      <div className="login-card">
        <h1 id="login-title">gpucloud</h1>
        {notice && <ErrorBox title="Not signed in">{notice}</ErrorBox>}
        <PasswordForm config={config} />
        <KeyForm />
      </div>
    </main>
  );
}

function PasswordForm({ config }: { config: AuthConfig | null }) {
  const { loginPassword } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, submit } = useSubmit(() => loginPassword(email, password));
  // The server names the provider ("single sign-on" when the operator did not).
  const sso = config?.oidc.enabled ? (config.oidc.name && config.oidc.name !== "single sign-on" ? `SSO (${config.oidc.name})` : "SSO") : null;
  return (
    <form className="card" onSubmit={submit} aria-label="Sign in with your account">
      <h2>Sign in</h2>
      {error && <ErrorBox title="Sign-in failed">{error}</ErrorBox>}
      <Field label="Email" type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} />
      <Field label="Password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      <div className="actions">
        <button type="submit" disabled={busy || !email.trim() || !password}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {sso && (
          <button type="button" className="secondary" onClick={() => globalThis.location.assign("/api/auth/oidc/login")}>
            Sign in with {sso}
          </button>
        )}
      </div>
    </form>
  );
}

function KeyForm() {
  const { login } = useAuth();
  const [key, setKey] = useState("");
  const { error, busy, submit } = useSubmit(() => login(key));
  return (
    <form className="card" onSubmit={submit} aria-label="Sign in with a key, for automation">
      <h2>Or with an API key</h2>
      <p className="muted">For automation users. An admin key opens every page; a user key opens the playground, its own usage and its own jobs.</p>
      {error && <ErrorBox title="Sign-in failed">{error}</ErrorBox>}
      <div className="field">
        <label htmlFor="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" spellCheck={false} placeholder="gc_…" value={key} onChange={(e) => setKey(e.target.value)} />
        <small className="muted">Kept in this browser (localStorage) until you sign out. Sent only to this server.</small>
      </div>
      <button type="submit" disabled={busy || !key.trim()}>
        {busy ? "Checking…" : "Sign in with key"}
      </button>
    </form>
  );
}
