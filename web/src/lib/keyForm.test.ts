import { describe, expect, it } from "vitest";
import type { ApiKey } from "../api/views";
import { emptyKeyForm, limitsOf, parseKeyForm, parseLimitsPatch, withoutEmptyLimits } from "./keyForm";

const now = new Date("2030-01-01T00:00:00Z");

describe("parseKeyForm", () => {
  it("needs a name", () => {
    const r = parseKeyForm({ ...emptyKeyForm, name: "  " }, now);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.name).toMatch(/name/);
  });

  it("builds the body: empty limits are null (unlimited), models listed, expiry in UTC", () => {
    const r = parseKeyForm(
      { ...emptyKeyForm, name: " app ", rpm_limit: "60", budget_usd: "2.5", budget_period: "monthly", allowed_models: "a, b,a", expires_at: "2031-06-01T12:00" },
      now,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      name: "app", role: "user", rpm_limit: 60, tpm_limit: null, max_concurrency: null, token_quota: null,
      budget_usd: 2.5, budget_period: "monthly", allowed_models: ["a", "b"], default_priority: "normal",
    });
    expect(r.value.expires_at).toBe(new Date("2031-06-01T12:00").toISOString());
    expect("max_priority" in r.value).toBe(false);
  });

  it("refuses bad numbers, a past expiry, a period without budget, and a ceiling below the default", () => {
    const r = parseKeyForm(
      { ...emptyKeyForm, name: "x", rpm_limit: "-1", tpm_limit: "1.5", budget_usd: "abc", expires_at: "2029-01-01T00:00", default_priority: "high", max_priority: "low" },
      now,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors).sort()).toEqual(["budget_usd", "expires_at", "max_priority", "rpm_limit", "tpm_limit"]);
    const p = parseKeyForm({ ...emptyKeyForm, name: "x", budget_period: "daily" }, now);
    expect(!p.ok && p.errors.budget_period).toBeTruthy();
  });
});

describe("parseLimitsPatch", () => {
  const key = { rpm_limit: 60, tpm_limit: null, max_concurrency: 4, token_quota: null, budget_usd: null, budget_period: null } as ApiKey;

  it("sends only what changed; emptying a field clears the limit", () => {
    const form = { ...limitsOf(key), rpm_limit: "", tpm_limit: "1000" };
    const r = parseLimitsPatch(form, key);
    expect(r).toEqual({ ok: true, value: { rpm_limit: null, tpm_limit: 1000 } });
    expect(parseLimitsPatch(limitsOf(key), key)).toEqual({ ok: true, value: {} });
  });
});

describe("withoutEmptyLimits", () => {
  it("leaves out the limits a member left empty, keeping the ones set", () => {
    const parsed = parseKeyForm({ ...emptyKeyForm, name: "mine", rpm_limit: "10" });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const body = withoutEmptyLimits(parsed.value);
    expect(body.rpm_limit).toBe(10);
    for (const field of ["tpm_limit", "max_concurrency", "token_quota", "budget_usd", "budget_period"]) expect(field in body).toBe(false);
  });
});
