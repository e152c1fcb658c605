// Sign in with an API key: checked with GET /api/me, then kept in this browser's localStorage.
import { type FormEvent, useState } from "react";
import { describeError } from "../api/client";
import { useAuth } from "../auth";
import { ErrorBox } from "../components/Status";

export function Login() {
  const { login, notice } = useAuth();
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(key);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">gpucloud</h1>
        <p className="muted">Sign in with an API key. An admin key opens every page; a user key opens the playground, its own usage and its own jobs.</p>
        {notice && !error && <ErrorBox title="Signed out">{notice}</ErrorBox>}
        {error && <ErrorBox title="Sign-in failed">{error}</ErrorBox>}
        <div className="field">
          <label htmlFor="api-key">API key</label>
          <input
            id="api-key"
            name="api-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            placeholder="gc_…"
            value={key}
            autoFocus
            onChange={(e) => setKey(e.target.value)}
          />
          <small className="muted">Kept in this browser (localStorage) until you sign out. Sent only to this server.</small>
        </div>
        <button type="submit" disabled={busy || !key.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
