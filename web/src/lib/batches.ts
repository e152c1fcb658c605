// Pure helpers of the Batches page: progress from a batch's request counts, whether it may still
// be cancelled, and a unix time as the ISO string the formatters take.
import type { Batch } from "../api/views";

export interface Progress {
  done: number;
  total: number;
  /** 0..1, or null before the lines are known (validating). */
  ratio: number | null;
}

export function progress(batch: Batch): Progress {
  const { total, completed, failed } = batch.request_counts;
  const done = completed + failed;
  return { done, total, ratio: total > 0 ? Math.min(1, done / total) : null };
}

export function cancellable(batch: Batch): boolean {
  return batch.status === "validating" || batch.status === "in_progress";
}

export function isoOf(unix: number | null | undefined): string | null {
  return unix === null || unix === undefined ? null : new Date(unix * 1000).toISOString();
}
