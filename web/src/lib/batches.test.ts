import { describe, expect, it } from "vitest";
import type { Batch } from "../api/views";
import { cancellable, isoOf, progress } from "./batches";

function batch(status: Batch["status"], total: number, completed: number, failed: number): Batch {
  return {
    id: "batch_1",
    object: "batch",
    endpoint: "/v1/chat/completions",
    errors: null,
    input_file_id: "file-1",
    completion_window: "24h",
    status,
    output_file_id: null,
    error_file_id: null,
    created_at: 1_700_000_000,
    in_progress_at: null,
    expires_at: null,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total, completed, failed },
    metadata: null,
  };
}

describe("batch helpers", () => {
  it("counts failed lines as done", () => {
    expect(progress(batch("in_progress", 200, 150, 10))).toEqual({ done: 160, total: 200, ratio: 0.8 });
  });
  it("has no ratio before the lines are known", () => {
    expect(progress(batch("validating", 0, 0, 0)).ratio).toBeNull();
  });
  it("cancels only running batches", () => {
    expect(cancellable(batch("in_progress", 1, 0, 0))).toBe(true);
    expect(cancellable(batch("validating", 0, 0, 0))).toBe(true);
    expect(cancellable(batch("cancelling", 1, 0, 0))).toBe(false);
    expect(cancellable(batch("completed", 1, 1, 0))).toBe(false);
  });
  it("turns unix seconds into ISO time", () => {
    expect(isoOf(1_700_000_000)).toBe("2023-11-14T22:13:20.000Z");
    expect(isoOf(null)).toBeNull();
  });
});
