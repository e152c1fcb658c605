// People's sign-in and organisations, against a stubbed fetch that answers like the server: email
// and password, the SSO button and hand-off, an invitation link, the organisation switcher, and
// what each role in an organisation is shown.
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { AuthProvider, STORAGE_KEY, TOKEN_KEY } from "./auth";
import { ORG_KEY } from "./org";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const refused = (status: number, message: string) => json(status, { error: { message, type: "invalid_request_error", param: null, code: null } });
const grant = (token: string) => ({ access_token: token, token_type: "bearer", expires_in: 900 });
const user = (id: string, email: string, isAdmin = false) => ({ id, object: "user", email, is_admin: isAdmin, created_at: "2026-01-01T00:00:00Z", disabled_at: null, password_changed_at: null });
const org = (id: string, name: string) => ({ id, object: "organization", name, created_at: "2026-01-01T00:00:00Z", allowed_models: null, rpm_limit: 60, tpm_limit: null, token_quota: null, budget_usd: null, budget_period: null });
const member = (orgId: string, userId: string, email: string, role: string) => ({ object: "org_member", org_id: orgId, user_id: userId, email, role, created_at: "2026-01-01T00:00:00Z" });

interface Call {
  method: string;
  path: string;
  auth: string | null;
  body: unknown;
}
let calls: Call[] = [];

/** Ann (owner of Acme, viewer of Beta) signs in with "pw-ann"; "tok-ann" is her token. */
function serve(oidc = false) {
  const members: Record<string, ReturnType<typeof member>[]> = {
    org_a: [member("org_a", "usr_ann", "ann@example.com", "owner"), member("org_a", "usr_bob", "bob@example.com", "member")],
    org_b: [member("org_b", "usr_ann", "ann@example.com", "viewer")],
  };
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const url = new URL(input.url);
      const body = input.method === "GET" ? null : await input.text().then((t) => (t ? JSON.parse(t) : null));
      const auth = input.headers.get("Authorization");
      calls.push({ method: input.method, path: url.pathname, auth, body });
      const route = `${input.method} ${url.pathname}`;
      if (route === "GET /api/auth/config") return json(200, { password: true, oidc: { enabled: oidc, name: oidc ? "Example IdP" : null } });
      if (route === "POST /api/auth/login") return body.password === "pw-ann" ? json(200, grant("tok-ann")) : refused(401, "Wrong email or password.");
      if (route === "POST /api/auth/oidc/exchange") return body.code === "good-code" ? json(200, grant("tok-ann")) : refused(400, "This sign-in code is unknown or used.");
      if (route === "POST /api/auth/invitations/accept") return body.token === "inv-tok" ? json(200, grant("tok-ann")) : refused(400, "This invitation is unknown or expired.");
      if (auth !== "Bearer tok-ann" && auth !== "Bearer tok-ann-2") return refused(401, "Sign in first.");
      if (route === "POST /api/auth/refresh") return json(200, grant("tok-ann-2"));
      if (route === "GET /api/auth/me") return json(200, user("usr_ann", "ann@example.com"));
      if (route === "POST /api/auth/logout") return json(200, { object: "sign_out", revoked: true });
      if (route === "GET /api/orgs") return json(200, { object: "list", data: [org("org_a", "Acme"), org("org_b", "Beta")] });
      const m = url.pathname.match(/^\/api\/orgs\/(org_[ab])\/(members|invitations)$/);
      if (m && input.method === "GET") return json(200, { object: "list", data: m[2] === "members" ? members[m[1]!] : [] });
      if (url.pathname === "/api/orgs/org_a/invitations") return json(201, { id: "inv_1", object: "invitation", org_id: "org_a", email: body.email, role: body.role, status: "pending", created_by: "usr_ann", created_at: "2026-01-01T00:00:00Z", expires_at: "2026-02-01T00:00:00Z", accepted_at: null, revoked_at: null, url: "/?invite=inv-tok", token: "inv-tok" });
      if (route === "PATCH /api/orgs/org_a/members/usr_bob") return refused(403, "Only an owner can grant or change the owner role.");
      if (url.pathname === "/api/usage") return json(200, { object: "list", granularity: "day", data: [], totals: { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost_usd: 0 } });
      if (url.pathname === "/api/audit") return json(200, { object: "list", data: [], next_cursor: null });
      return refused(404, `No route ${route}`);
    }),
  );
}

function renderApp() {
  return render(
    <AuthProvider baseUrl="http://gpucloud.test">
      <App />
    </AuthProvider>,
  );
}

async function navLinks() {
  const nav = await screen.findByRole("navigation", { name: "Pages" });
  return [...nav.querySelectorAll("a")].map((a) => a.textContent);
}

beforeEach(() => {
  calls = [];
  localStorage.clear();
  window.history.replaceState(null, "", "/");
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("sign-in with email and password", () => {
  it("refuses a wrong password with the server's reason", async () => {
    serve();
    renderApp();
    const u = userEvent.setup();
    await u.type(await screen.findByLabelText("Email"), "ann@example.com");
    await u.type(screen.getByLabelText("Password"), "nope{Enter}");
    expect((await screen.findByRole("alert")).textContent).toContain("Wrong email or password.");
    expect(localStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it("signs in, keeps the token (not as an API key), opens the owner's pages, and signing out revokes it", async () => {
    serve();
    renderApp();
    const u = userEvent.setup();
    await u.type(await screen.findByLabelText("Email"), "ann@example.com");
    await u.type(screen.getByLabelText("Password"), "pw-ann{Enter}");
    await waitFor(async () => expect(await navLinks()).toEqual(["API keys", "Usage", "Members", "Organisation", "Audit log"]));
    expect(JSON.parse(localStorage.getItem(TOKEN_KEY) ?? "{}").token).toBe("tok-ann");
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
    expect(screen.getByText("ann@example.com")).toBeTruthy();
    await u.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByLabelText("Email")).toBeTruthy();
    await waitFor(() => expect(calls.some((c) => c.path === "/api/auth/logout" && c.auth === "Bearer tok-ann")).toBe(true));
    expect(localStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it("shows the SSO button only when the server has single sign-on configured", async () => {
    serve(false);
    const first = renderApp();
    await screen.findByLabelText("Email");
    await waitFor(() => expect(calls.some((c) => c.path === "/api/auth/config")).toBe(true));
    expect(screen.queryByRole("button", { name: /SSO/ })).toBeNull();
    first.unmount();
    serve(true);
    renderApp();
    expect(await screen.findByRole("button", { name: "Sign in with SSO (Example IdP)" })).toBeTruthy();
  });
});

describe("a user's token", () => {
  it("is refreshed before it expires, and the new one is kept and used", async () => {
    serve();
    // Two seconds left: refreshed at 80% of that (a long token: a minute before it expires).
    localStorage.setItem(TOKEN_KEY, JSON.stringify({ token: "tok-ann", expiresAt: Date.now() + 2_000 }));
    renderApp();
    await navLinks();
    await waitFor(() => expect(calls.some((c) => c.path === "/api/auth/refresh" && c.auth === "Bearer tok-ann")).toBe(true), { timeout: 10_000 });
    await waitFor(() => expect(JSON.parse(localStorage.getItem(TOKEN_KEY) ?? "{}").token).toBe("tok-ann-2"));
  });
});

describe("hand-offs in the address", () => {
  it("exchanges ?sso_code= for a session and removes it from the address", async () => {
    serve(true);
    window.history.replaceState(null, "", "/?sso_code=good-code");
    renderApp();
    expect(await navLinks()).toContain("Usage");
    expect(window.location.search).toBe("");
    expect(calls.find((c) => c.path === "/api/auth/oidc/exchange")?.body).toEqual({ code: "good-code" });
  });

  it("says why when ?sso_error= comes back", async () => {
    serve(true);
    window.history.replaceState(null, "", "/?sso_error=access_denied");
    renderApp();
    expect((await screen.findByRole("alert")).textContent).toContain("The identity provider refused the sign-in.");
    expect(window.location.search).toBe("");
  });

  it("accepts an invitation with a new password and signs the person in", async () => {
    serve();
    window.history.replaceState(null, "", "/?invite=inv-tok");
    renderApp();
    const u = userEvent.setup();
    await u.type(await screen.findByLabelText("New password"), "long-password");
    await u.type(screen.getByLabelText("Repeat the password"), "long-password");
    await u.click(screen.getByRole("button", { name: "Accept and sign in" }));
    expect(await navLinks()).toContain("Members");
    expect(calls.find((c) => c.path === "/api/auth/invitations/accept")?.body).toEqual({ token: "inv-tok", password: "long-password" });
    expect(window.location.search).toBe("");
  });
});

describe("organisations", () => {
  function signedIn(orgId = "org_a") {
    localStorage.setItem(TOKEN_KEY, JSON.stringify({ token: "tok-ann", expiresAt: Date.now() + 600_000 }));
    localStorage.setItem(ORG_KEY, orgId);
  }

  it("an owner invites (the link shown once) and sees the server's 403 when a change is refused", async () => {
    serve();
    signedIn();
    window.history.replaceState(null, "", "/members");
    renderApp();
    const u = userEvent.setup();
    await u.type(await screen.findByLabelText("Email to invite"), "cat@example.com");
    await u.click(screen.getByRole("button", { name: "Invite" }));
    const link = (await screen.findByRole("textbox", { name: "Invitation link" })) as HTMLInputElement;
    expect(link.value).toBe(`${window.location.origin}/?invite=inv-tok`);
    await u.selectOptions(await screen.findByLabelText("Role of bob@example.com"), "owner");
    expect((await screen.findByRole("alert")).textContent).toContain("Only an owner can grant or change the owner role.");
  });

  it("switching to an organisation where the user is a viewer makes members read-only and hides the audit log", async () => {
    serve();
    signedIn();
    window.history.replaceState(null, "", "/members");
    renderApp();
    const u = userEvent.setup();
    await screen.findByLabelText("Email to invite");
    await u.selectOptions(screen.getByLabelText("Organisation"), "org_b");
    expect(await screen.findByText(/Read-only/)).toBeTruthy();
    expect(screen.queryByLabelText("Email to invite")).toBeNull();
    await waitFor(async () => expect(await navLinks()).toEqual(["Usage", "Members", "Organisation"]));
    expect(within(screen.getByRole("table")).queryByRole("combobox")).toBeNull();
    expect(localStorage.getItem(ORG_KEY)).toBe("org_b");
  });
});
