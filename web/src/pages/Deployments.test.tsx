// The Deployments page against a stubbed fetch: what a card shows, and what the form sends.
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Deployment } from "../api/views";
import { App } from "../App";
import { AuthProvider, STORAGE_KEY } from "../auth";
import { settling } from "./Deployments";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const UUID = "GPU-148d3162-c03c-594c-a6e8-d07b47495466";

const deployment = (over: Partial<Deployment> = {}): Deployment => ({
  id: "dep_1", object: "deployment", name: "llama", engine: "transformers", source: "llama-3-8b", engine_options: {}, replicas: 2,
  gpu_memory_gb: 17.2, gpu_memory_estimated: true, gpu_count: 1, labels: {}, gpu_type: null, policy: "spread", on_demand: false,
  idle_unload_seconds: null, state: "ready", reason: null, ready_replicas: 1, created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z",
  spec_version: 1, max_surge: 1, max_unavailable: 0, rollout: null, autoscale: null,
  replica_states: [
    { index: 0, worker_id: "local-vm", gpu_uuids: [UUID], state: "ready", reason: null, updated_at: "2026-01-01T00:00:00Z", last_used_at: null, spec_version: 1 },
    { index: 1, worker_id: "local-vm", gpu_uuids: [UUID], state: "failed", reason: "load failed: out of memory; retrying in 4 s", updated_at: "2026-01-01T00:00:00Z", last_used_at: null, spec_version: 1 },
  ],
  ...over,
});

const gpu = { index: 0, uuid: UUID, name: "H100", memory_used_bytes: 0, memory_total_bytes: 80e9, utilization: null, temperature_c: null, power_w: null };
let posted: unknown[] = [];

beforeEach(() => {
  posted = [];
  localStorage.clear();
  localStorage.setItem(STORAGE_KEY, "gc_admin");
  window.history.replaceState(null, "", "/deployments");
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const path = new URL(input.url).pathname;
      if (path === "/api/me") return json(200, { id: "key_admin", object: "api_key", name: "admin", prefix: "gc_abc", role: "admin" });
      if (path === "/api/workers") return json(200, { object: "list", data: [{ id: "local-vm", gpus: [gpu] }] });
      if (path === "/api/deployments" && input.method === "POST") {
        const body = await input.json();
        posted.push(body);
        return json(201, deployment({ name: body.name }));
      }
      if (path === "/api/deployments") return json(200, { object: "list", data: [deployment()] });
      return json(404, { error: { message: "Not found", type: "invalid_request_error", param: null, code: "not_found" } });
    }),
  );
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderApp() {
  return render(
    <AuthProvider baseUrl="http://gpucloud.test">
      <App />
    </AuthProvider>,
  );
}

describe("Deployments page", () => {
  it("shows estimated GPU memory, each replica's reason, and GPUs by name", async () => {
    renderApp();
    const card = await screen.findByRole("article", { name: "Deployment llama" });
    expect(card.textContent).toContain("17.2 GB per GPU × 1 GPU (estimated from the model's config.json)");
    const rows = within(within(card).getByRole("table", { name: "Replicas" })).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[1]?.textContent).toContain("load failed: out of memory; retrying in 4 s");
    await waitFor(() => expect(rows[0]?.textContent).toContain("GPU 0 · H100"));
  });

  it("leaves the GPU count to the server for a simulated deployment with no GPU memory", async () => {
    renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Create a deployment" }));
    const form = screen.getByRole("form", { name: "Create a deployment" });
    expect(within(form).getByText("empty: no GPU (runs on CPU)")).toBeTruthy();
    await user.type(within(form).getByLabelText("Model name"), "cpu-sim");
    await user.click(within(form).getByRole("button", { name: "Create deployment" }));
    await waitFor(() => expect(posted).toHaveLength(1));
    expect(posted[0]).toMatchObject({ name: "cpu-sim", engine: "simulated", gpu_memory_gb: null, gpu_count: null });
  });
});

describe("settling", () => {
  it("is true while replicas are placed or loading, false once ready or unschedulable", () => {
    expect(settling(deployment({ state: "loading" }))).toBe(true);
    expect(settling(deployment({ replicas: 3 }))).toBe(true); // a third replica not placed yet
    expect(settling(deployment())).toBe(false); // a failed replica is retried with backoff: no hurry
    expect(settling(deployment({ ready_replicas: 2 }))).toBe(false);
    expect(settling(deployment({ state: "unschedulable", ready_replicas: 0, replica_states: [] }))).toBe(false);
  });
});
