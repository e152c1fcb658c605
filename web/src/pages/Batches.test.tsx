// The Batches page against a stubbed fetch: progress per batch, the upload then create sequence,
// and cancel.
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Batch } from "../api/views";
import { App } from "../App";
import { AuthProvider, STORAGE_KEY } from "../auth";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const batch = (over: Partial<Batch> = {}): Batch => ({
  id: "batch_1", object: "batch", endpoint: "/v1/chat/completions", errors: null, input_file_id: "file-in", completion_window: "24h",
  status: "in_progress", output_file_id: null, error_file_id: null, created_at: 1_795_000_000, in_progress_at: 1_795_000_001,
  expires_at: 1_795_086_400, finalizing_at: null, completed_at: null, failed_at: null, expired_at: null, cancelling_at: null,
  cancelled_at: null, request_counts: { total: 200, completed: 120, failed: 30 }, metadata: null, ...over,
});

let calls: { method: string; path: string; contentType?: string; body?: unknown }[] = [];

beforeEach(() => {
  calls = [];
  localStorage.clear();
  localStorage.setItem(STORAGE_KEY, "gc_user");
  window.history.replaceState(null, "", "/batches");
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const path = new URL(input.url).pathname;
      if (path === "/api/me") return json(200, { id: "key_user", object: "api_key", name: "user", prefix: "gc_abc", role: "user" });
      if (path === "/v1/files" && input.method === "POST") {
        // The multipart body itself is not read: jsdom's File does not stream into fetch's Request.
        calls.push({ method: "POST", path, contentType: input.headers.get("content-type") ?? "" });
        return json(200, { id: "file-new", object: "file", bytes: 10, created_at: 1, filename: "in.jsonl", purpose: "batch", status: "processed", status_details: null, expires_at: null });
      }
      if (input.method === "POST") {
        const text = await input.text();
        calls.push({ method: "POST", path, body: text ? JSON.parse(text) : null });
        return json(200, path.endsWith("/cancel") ? batch({ status: "cancelling" }) : batch({ id: "batch_2", status: "validating" }));
      }
      if (path === "/v1/batches") return json(200, { object: "list", data: [batch(), batch({ id: "batch_0", status: "completed", output_file_id: "file-out", request_counts: { total: 5, completed: 5, failed: 0 } })], first_id: "batch_1", last_id: "batch_0", has_more: false });
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

describe("Batches page", () => {
  it("shows each batch's progress and its files", async () => {
    renderApp();
    const table = await screen.findByTestId("batches-table");
    const running = within(table).getByText("batch_1").closest("tr") as HTMLElement;
    expect(within(running).getByLabelText("batch_1 progress").getAttribute("value")).toBe("150");
    expect(within(running).getByText("150 / 200")).toBeTruthy();
    expect(within(running).getByRole("button", { name: "Cancel" })).toBeTruthy();
    const done = within(table).getByText("batch_0").closest("tr") as HTMLElement;
    expect(within(done).getByRole("button", { name: "Output" })).toBeTruthy();
    expect(within(done).queryByRole("button", { name: "Cancel" })).toBeNull();
  });

  it("uploads the file as multipart, then creates the batch from it", async () => {
    renderApp();
    const user = userEvent.setup();
    await user.upload(await screen.findByLabelText("Requests (JSONL)"), new File(['{"custom_id":"a"}'], "in.jsonl"));
    await user.click(screen.getByRole("button", { name: "Upload and start" }));
    await waitFor(() => expect(calls.map((c) => c.path)).toEqual(["/v1/files", "/v1/batches"]));
    expect(calls[0]?.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(calls[1]?.body).toEqual({ input_file_id: "file-new", endpoint: "/v1/chat/completions", completion_window: "24h" });
  });

  it("cancels after confirmation", async () => {
    renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Cancel" }));
    await user.click(screen.getByRole("button", { name: "Yes, cancel" }));
    await waitFor(() => expect(calls.map((c) => c.path)).toEqual(["/v1/batches/batch_1/cancel"]));
  });
});
