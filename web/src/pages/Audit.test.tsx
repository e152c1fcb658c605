// The audit page against a stubbed fetch: filters become the query, "Load more" follows the cursor.
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { AuthProvider, STORAGE_KEY } from "../auth";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const row = (id: number, action: string) => ({ id, object: "audit_entry", at: "2026-01-01T00:00:00Z", actor: "key_admin", action, target: `t${id}`, org_id: null, result: "success", status: 200, client_ip: "127.0.0.1", request_id: `r${id}` });
let queries: URLSearchParams[] = [];

beforeEach(() => {
  queries = [];
  localStorage.clear();
  localStorage.setItem(STORAGE_KEY, "gc_admin");
  window.history.replaceState(null, "", "/audit");
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const url = new URL(input.url);
      if (url.pathname === "/api/me") return json(200, { id: "key_admin", object: "api_key", name: "admin key", prefix: "gc_abc", role: "admin" });
      if (url.pathname === "/api/orgs") return json(200, { object: "list", data: [] });
      if (url.pathname !== "/api/audit") return json(404, { error: { message: "nope", type: "x", param: null, code: null } });
      queries.push(url.searchParams);
      if (url.searchParams.get("action")) return json(200, { object: "list", data: [row(1, "DELETE /api/keys/{key_id}")], next_cursor: null });
      if (url.searchParams.get("cursor") === "2") return json(200, { object: "list", data: [row(1, "POST /api/orgs")], next_cursor: null });
      return json(200, { object: "list", data: [row(3, "POST /api/keys"), row(2, "POST /api/users")], next_cursor: "2" });
    }),
  );
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Audit log", () => {
  it("loads more rows from the cursor, then filters from the first page", async () => {
    render(
      <AuthProvider baseUrl="http://gpucloud.test">
        <App />
      </AuthProvider>,
    );
    const u = userEvent.setup();
    expect(await screen.findByText("POST /api/users")).toBeTruthy();
    await u.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByText("POST /api/orgs")).toBeTruthy();
    expect(screen.getByText("3 shown")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();

    await u.type(screen.getByLabelText("Action"), "DELETE /api/keys/{{key_id}");
    await u.click(screen.getByRole("button", { name: "Filter" }));
    await waitFor(() => expect(screen.getByText("1 shown")).toBeTruthy());
    const last = queries.at(-1);
    expect(last?.get("action")).toBe("DELETE /api/keys/{key_id}");
    expect(last?.get("cursor")).toBeNull();
    expect(last?.has("org_id")).toBe(false);
  });
});
