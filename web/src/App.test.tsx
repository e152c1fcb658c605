// The sign-in flow and the pages a key sees, against a stubbed fetch that answers like the server.
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { AuthProvider, STORAGE_KEY } from "./auth";

const me = (role: "admin" | "user") => ({ id: `key_${role}`, object: "api_key", name: `${role} key`, prefix: "gc_abc", role });
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const invalid = { error: { message: "Incorrect API key provided.", type: "invalid_request_error", param: null, code: "invalid_api_key" } };

let seen: { url: string; auth: string | null }[] = [];

function serve(keys: Record<string, "admin" | "user">) {
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const auth = input.headers.get("Authorization");
      seen.push({ url: input.url, auth });
      const role = keys[(auth ?? "").replace("Bearer ", "")];
      if (!role) return json(401, invalid);
      const path = new URL(input.url).pathname;
      if (path === "/api/me") return json(200, me(role));
      if (path === "/v1/models") return json(200, { object: "list", data: [{ id: "gpucloud-sim-1", object: "model" }] });
      if (path.startsWith("/api/") && role !== "admin") return json(403, { error: { message: "This action needs an admin API key.", type: "permission_error", param: null, code: "admin_required" } });
      return json(404, { error: { message: "Not found", type: "invalid_request_error", param: null, code: "not_found" } });
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

beforeEach(() => {
  seen = [];
  localStorage.clear();
  window.history.replaceState(null, "", "/");
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("sign-in", () => {
  it("refuses a bad key with the server's reason and keeps nothing", async () => {
    serve({});
    renderApp();
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("API key"), "gc_wrong{Enter}");
    expect((await screen.findByRole("alert")).textContent).toContain("This API key was not accepted: Incorrect API key provided.");
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
    expect(seen.at(-1)?.url).toBe("http://gpucloud.test/api/me");
  });

  it("signs an admin in, shows every page, keeps the key, and signs out", async () => {
    serve({ gc_admin: "admin" });
    renderApp();
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("API key"), "gc_admin");
    await user.click(screen.getByRole("button", { name: "Sign in with key" }));
    const nav = await screen.findByRole("navigation", { name: "Pages" });
    expect([...nav.querySelectorAll("a")].map((a) => a.textContent)).toEqual(["Overview", "Playground", "API keys", "Usage", "Deployments", "Workers & GPUs", "Jobs", "Batches", "Webhooks", "Members", "Organisation", "Audit log"]);
    expect(localStorage.getItem(STORAGE_KEY)).toBe("gc_admin");
    await user.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByLabelText("API key")).toBeTruthy();
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
  });

  it("gives a user key only the playground, its usage, jobs, batches and webhooks, starting at the playground", async () => {
    serve({ gc_user: "user" });
    localStorage.setItem(STORAGE_KEY, "gc_user");
    renderApp();
    const nav = await screen.findByRole("navigation", { name: "Pages" });
    expect([...nav.querySelectorAll("a")].map((a) => a.textContent)).toEqual(["Playground", "Usage", "Jobs", "Batches", "Webhooks"]);
    await waitFor(() => expect(window.location.pathname).toBe("/playground"));
    expect(await screen.findByLabelText("Model")).toBeTruthy();
  });

  it("a user key opening an admin page by its address is told it needs an admin key", async () => {
    serve({ gc_user: "user" });
    localStorage.setItem(STORAGE_KEY, "gc_user");
    window.history.replaceState(null, "", "/keys");
    renderApp();
    expect(await screen.findByText("This page needs an admin API key.")).toBeTruthy();
  });

  it("drops a stored key the server no longer accepts", async () => {
    serve({});
    localStorage.setItem(STORAGE_KEY, "gc_revoked");
    renderApp();
    expect(await screen.findByText(/no longer accepted/)).toBeTruthy();
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
  });
});
