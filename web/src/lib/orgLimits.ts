// The organisation limits form: its text fields from an organisation, and the PATCH body of what
// changed (only those fields; an emptied field makes the limit unlimited).
import type { Org } from "../api/views";
import { type FieldErrors, type Parsed, optionalInt, optionalNumber } from "./forms";

export interface OrgLimitsForm {
  rpm_limit: string;
  tpm_limit: string;
  token_quota: string;
  budget_usd: string;
  budget_period: "" | "daily" | "monthly";
  /** Comma-separated; empty: any model. */
  allowed_models: string;
}

export interface OrgLimitsPatch {
  rpm_limit?: number | null;
  tpm_limit?: number | null;
  token_quota?: number | null;
  budget_usd?: number | null;
  budget_period?: "daily" | "monthly" | null;
  allowed_models?: string[] | null;
}

const text = (v: number | null) => (v === null ? "" : String(v));

export function orgLimitsOf(org: Org): OrgLimitsForm {
  return {
    rpm_limit: text(org.rpm_limit),
    tpm_limit: text(org.tpm_limit),
    token_quota: text(org.token_quota),
    budget_usd: text(org.budget_usd),
    budget_period: org.budget_period ?? "",
    allowed_models: org.allowed_models?.join(", ") ?? "",
  };
}

/** The fields that differ from `org`, parsed; or the errors of those that do not parse. */
export function parseOrgLimits(form: OrgLimitsForm, org: Org): Parsed<OrgLimitsPatch> {
  const errors: FieldErrors = {};
  const patch: OrgLimitsPatch = {};
  for (const field of ["rpm_limit", "tpm_limit", "token_quota"] as const) {
    const value = optionalInt(form[field]);
    if (typeof value === "string") errors[field] = value;
    else if (value !== org[field]) patch[field] = value;
  }
  const budget = optionalNumber(form.budget_usd);
  if (typeof budget === "string") errors.budget_usd = budget;
  else if (budget !== org.budget_usd) patch.budget_usd = budget;
  const period = form.budget_period || null;
  if (period !== org.budget_period) patch.budget_period = period;
  const models = modelList(form.allowed_models);
  if (JSON.stringify(models) !== JSON.stringify(org.allowed_models)) patch.allowed_models = models;
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, value: patch };
}

/** "a, b ,a" → ["a", "b"]; "" → null (any model). */
export function modelList(text: string): string[] | null {
  const names = [...new Set(text.split(",").map((m) => m.trim()).filter(Boolean))];
  return names.length ? names : null;
}

/** The limits in words: "600 rpm, 1,000 tokens per day", or "unlimited". */
export function orgLimitsText(org: Org): string {
  const per = org.budget_period === "daily" ? " per day" : org.budget_period === "monthly" ? " per month" : "";
  const parts = [
    org.rpm_limit !== null ? `${org.rpm_limit.toLocaleString("en-US")} rpm` : null,
    org.tpm_limit !== null ? `${org.tpm_limit.toLocaleString("en-US")} tpm` : null,
    org.token_quota !== null ? `${org.token_quota.toLocaleString("en-US")} tokens${per}` : null,
    org.budget_usd !== null ? `$${org.budget_usd.toFixed(2)}${per}` : null,
  ].filter((p): p is string => p !== null);
  return parts.length ? parts.join(", ") : "unlimited";
}
