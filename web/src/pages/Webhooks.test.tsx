// The Webhooks page against a stubbed fetch: a key that may manage the organisation's endpoints
// gets the form, Delete and Redeliver; one that may only read them (`can_manage: false`) gets none
// of those, and a note saying who can.
import { cleanup, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { WebhookDelivery, WebhookEndpoint } from "../api/views";
import { App } from "../App";
import { AuthProvider, STORAGE_KEY } from "../auth";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const endpoint: WebhookEndpoint = {
  id: "wh_1", object: "webhook_endpoint", url: "https://hooks.example.com/in", events: ["batch.completed"],
  created_at: 1_795_000_000, secret: null, org_id: "org_1", created_by: "key_admin",
};
const delivery: WebhookDelivery = {
  id: "whd_1", object: "webhook_delivery", endpoint_id: "wh_1", event_id: "evt_1", event_type: "batch.completed",
  status: "failed", attempts: 1, next_attempt_at: null, last_status_code: 503, last_error: "HTTP 503", created_at: 1_795_000_001, delivered_at: null,
};

function serve(canManage: boolean) {
  localStorage.clear();
  localStorage.setItem(STORAGE_KEY, "gc_user");
  window.history.replaceState(null, "", "/webhooks");
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const path = new URL(input.url).pathname;
      if (path === "/api/me") return json(200, { id: "key_user", object: "api_key", name: "user", prefix: "gc_abc", role: "user" });
      if (path === "/api/webhooks") return json(200, { object: "list", data: [endpoint], can_manage: canManage });
      if (path === "/api/webhooks/wh_1/deliveries") return json(200, { object: "list", data: [delivery] });
      return json(404, { error: { message: "Not found", type: "invalid_request_error", param: null, code: "not_found" } });
    }),
  );
  render(
    <AuthProvider baseUrl="http://gpucloud.test">
      <App />
    </AuthProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Webhooks page", () => {
  it("offers a managing key the form, Delete and Redeliver", async () => {
    serve(true);
    const table = await screen.findByTestId("webhooks-table");
    expect(screen.getByRole("form", { name: "New webhook" })).toBeTruthy();
    expect(within(table).getByRole("button", { name: "Delete" })).toBeTruthy();
    await userEvent.click(within(table).getByRole("button", { name: "Deliveries" }));
    const deliveries = await screen.findByTestId("deliveries-table");
    expect(within(deliveries).getByRole("button", { name: "Redeliver" })).toBeTruthy();
    expect(screen.queryByTestId("webhooks-read-only")).toBeNull();
  });

  it("shows a reading key the endpoints and deliveries, with nothing it would be refused", async () => {
    serve(false);
    const table = await screen.findByTestId("webhooks-table");
    expect(within(table).getByText("https://hooks.example.com/in")).toBeTruthy();
    expect(screen.getByTestId("webhooks-read-only").textContent).toContain("owners and admins");
    expect(screen.queryByRole("form", { name: "New webhook" })).toBeNull();
    expect(within(table).queryByRole("button", { name: "Delete" })).toBeNull();
    await userEvent.click(within(table).getByRole("button", { name: "Deliveries" }));
    const deliveries = await screen.findByTestId("deliveries-table");
    expect(within(deliveries).getByText("HTTP 503")).toBeTruthy();
    expect(within(deliveries).queryByRole("button", { name: "Redeliver" })).toBeNull();
  });
});
