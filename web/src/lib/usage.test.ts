import { describe, expect, it } from "vitest";
import type { UsageRow } from "../api/views";
import { breakdown, stack } from "./usage";

const row = (period: string, key_id: string, model: string, total_tokens: number, cost_usd: number): UsageRow => ({
  period, key_id, model, requests: 1, prompt_tokens: total_tokens / 2, completion_tokens: total_tokens / 2, total_tokens, cost_usd,
});

const data = [
  row("2030-01-02", "k1", "m-a", 10, 0.1),
  row("2030-01-01", "k1", "m-a", 20, 0.2),
  row("2030-01-01", "k2", "m-b", 40, 0.1),
  row("2030-01-01", "k2", "m-a", 2, 0.000001),
];

describe("stack", () => {
  it("splits a metric per period by model, periods in order, missing names as 0", () => {
    const s = stack(data, "model", "total_tokens");
    expect(s.names).toEqual(["m-b", "m-a"]);
    expect(s.rows).toEqual([
      { period: "2030-01-01", "m-a": 22, "m-b": 40 },
      { period: "2030-01-02", "m-a": 10, "m-b": 0 },
    ]);
  });

  it("names keys by their labels and sums cost without float noise", () => {
    const s = stack(data, "key_id", "cost_usd", { k1: "app one" });
    expect(s.names).toEqual(["app one", "k2"]);
    expect(s.rows[0]).toEqual({ period: "2030-01-01", "app one": 0.2, k2: 0.100001 });
  });
});

describe("breakdown", () => {
  it("totals per key, largest spend first", () => {
    expect(breakdown(data, "key_id")).toEqual([
      { name: "k1", requests: 2, total_tokens: 30, cost_usd: 0.3 },
      { name: "k2", requests: 2, total_tokens: 42, cost_usd: 0.100001 },
    ]);
  });

  it("shows rows without the dimension as (all)", () => {
    expect(breakdown([{ ...data[0]!, model: null }], "model")[0]?.name).toBe("(all)");
  });
});
