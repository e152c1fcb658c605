// An invitation link (`/?invite=<token>`): choose a password, and the invitation makes the account
// (or adds the organisation to an existing one) and signs it in (POST /api/auth/invitations/accept).
import { type FormEvent, useState } from "react";
import { acceptInvitation } from "../api/accounts";
import { describeError } from "../api/client";
import { useAuth } from "../auth";
import { Field } from "../components/Controls";
import { ErrorBox } from "../components/Status";
import { clearHandoff } from "../lib/session";

export const MIN_PASSWORD = 8;

/** Why a chosen password cannot be sent yet, or null. The server checks it again. */
export function passwordProblem(password: string, repeat: string): string | null {
  if (password.length < MIN_PASSWORD) return `Use at least ${MIN_PASSWORD} characters.`;
  if (password !== repeat) return "The two passwords differ.";
  return null;
}

export function AcceptInvite({ token, onDone }: { token: string; onDone: () => void }) {
  const { client, loginWithToken } = useAuth();
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const problem = passwordProblem(password, repeat);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (problem) return setError(problem);
    setBusy(true);
    setError(null);
    try {
      await loginWithToken(await acceptInvitation(client, token, password));
      clearHandoff(); // the token is a secret: not left in the address bar
      onDone();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form className="card login-card" onSubmit={submit} aria-labelledby="invite-title" noValidate>
        <h1 id="invite-title">Accept the invitation</h1>
        <p className="muted">You were invited to an organisation on gpucloud. Choose a password to sign in with from now on.</p>
        {error && <ErrorBox title="Could not accept the invitation">{error}</ErrorBox>}
        <Field label="New password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} hint={`at least ${MIN_PASSWORD} characters`} />
        <Field label="Repeat the password" type="password" autoComplete="new-password" value={repeat} onChange={(e) => setRepeat(e.target.value)} />
        <div className="actions">
          <button type="submit" disabled={busy || problem !== null}>
            {busy ? "Accepting…" : "Accept and sign in"}
          </button>
          <button
            type="button"
            className="secondary"
            onClick={() => {
              clearHandoff();
              onDone();
            }}
          >
            Not now
          </button>
        </div>
      </form>
    </main>
  );
}
