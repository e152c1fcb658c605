// Usage rows (per period × key × model) reshaped for charts and tables.

import type { UsageRow } from "../api/views";

export type Dimension = "model" | "key_id";
export type Metric = "requests" | "total_tokens" | "prompt_tokens" | "completion_tokens" | "cost_usd";

export interface Stacked {
  /** One object per period, oldest first: `{period, [name]: value}`. */
  rows: Record<string, string | number>[];
  /** The names stacked, largest total first. */
  names: string[];
}

export function nameOf(row: UsageRow, dim: Dimension, labels: Record<string, string> = {}): string {
  const raw = row[dim];
  if (raw === null) return "(all)";
  return labels[raw] ?? raw;
}

/** A chart's data: `metric` per period, split by `dim`. */
export function stack(
  data: readonly UsageRow[],
  dim: Dimension,
  metric: Metric,
  labels: Record<string, string> = {},
): Stacked {
  const byPeriod = new Map<string, Record<string, string | number>>();
  const totals = new Map<string, number>();
  for (const row of data) {
    const name = nameOf(row, dim, labels);
    const entry = byPeriod.get(row.period) ?? { period: row.period };
    entry[name] = round((Number(entry[name]) || 0) + row[metric]);
    byPeriod.set(row.period, entry);
    totals.set(name, (totals.get(name) ?? 0) + row[metric]);
  }
  const names = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([n]) => n);
  const rows = [...byPeriod.values()].sort((a, b) => String(a.period).localeCompare(String(b.period)));
  for (const row of rows) for (const name of names) row[name] ??= 0;
  return { rows, names };
}

export interface Breakdown {
  name: string;
  requests: number;
  total_tokens: number;
  cost_usd: number;
}

/** Totals per key or per model, largest spend (then tokens) first. */
export function breakdown(data: readonly UsageRow[], dim: Dimension, labels: Record<string, string> = {}): Breakdown[] {
  const out = new Map<string, Breakdown>();
  for (const row of data) {
    const name = nameOf(row, dim, labels);
    const b = out.get(name) ?? { name, requests: 0, total_tokens: 0, cost_usd: 0 };
    b.requests += row.requests;
    b.total_tokens += row.total_tokens;
    b.cost_usd = round(b.cost_usd + row.cost_usd);
    out.set(name, b);
  }
  return [...out.values()].sort((a, b) => b.cost_usd - a.cost_usd || b.total_tokens - a.total_tokens);
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
