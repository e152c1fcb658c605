import { describe, expect, it } from "vitest";
import type { Org } from "../api/views";
import { orgLimitsOf, orgLimitsText, parseOrgLimits } from "./orgLimits";

const org: Org = { id: "org_a", object: "organization", name: "Acme", created_at: "2026-01-01T00:00:00Z", allowed_models: null, rpm_limit: 60, tpm_limit: null, token_quota: 1000, budget_usd: null, budget_period: "daily" };

describe("organisation limits form", () => {
  it("sends only what changed; an emptied field is unlimited", () => {
    const form = { ...orgLimitsOf(org), rpm_limit: "", budget_usd: "12.5" };
    expect(parseOrgLimits(form, org)).toEqual({ ok: true, value: { rpm_limit: null, budget_usd: 12.5 } });
    expect(parseOrgLimits(orgLimitsOf(org), org)).toEqual({ ok: true, value: {} });
  });
  it("sends the allowed models as a list, or null for any", () => {
    expect(parseOrgLimits({ ...orgLimitsOf(org), allowed_models: " m1, m2,m1 " }, org)).toEqual({ ok: true, value: { allowed_models: ["m1", "m2"] } });
    const limited = { ...org, allowed_models: ["m1"] };
    expect(parseOrgLimits({ ...orgLimitsOf(limited), allowed_models: "" }, limited)).toEqual({ ok: true, value: { allowed_models: null } });
    expect(parseOrgLimits(orgLimitsOf(limited), limited)).toEqual({ ok: true, value: {} });
  });
  it("names the field that does not parse", () => {
    const parsed = parseOrgLimits({ ...orgLimitsOf(org), tpm_limit: "-3", budget_usd: "x" }, org);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(Object.keys(parsed.errors).sort()).toEqual(["budget_usd", "tpm_limit"]);
  });
  it("says the limits in words", () => {
    expect(orgLimitsText(org)).toBe("60 rpm, 1,000 tokens per day");
    expect(orgLimitsText({ ...org, rpm_limit: null, token_quota: null })).toBe("unlimited");
  });
});
