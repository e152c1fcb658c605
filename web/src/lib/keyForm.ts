// The API key form: what a person typed → the typed body of POST /api/keys or PATCH /api/keys/{id}.

import type { Schemas } from "../api/client";
import type { ApiKey } from "../api/views";
import { type FieldErrors, type Parsed, list, optionalInt, optionalNumber } from "./forms";

export interface LimitsForm {
  rpm_limit: string;
  tpm_limit: string;
  max_concurrency: string;
  token_quota: string;
  budget_usd: string;
  budget_period: "" | "daily" | "monthly";
}

export interface KeyForm extends LimitsForm {
  name: string;
  role: "user" | "admin";
  expires_at: string; // <input type="datetime-local">, the browser's local time
  allowed_models: string;
  default_priority: "high" | "normal" | "low";
  max_priority: "" | "high" | "normal" | "low";
}

export const emptyKeyForm: KeyForm = {
  name: "",
  role: "user",
  expires_at: "",
  allowed_models: "",
  default_priority: "normal",
  max_priority: "",
  rpm_limit: "",
  tpm_limit: "",
  max_concurrency: "",
  token_quota: "",
  budget_usd: "",
  budget_period: "",
};

type Limits = Pick<Schemas["KeyCreate"], "rpm_limit" | "tpm_limit" | "max_concurrency" | "token_quota" | "budget_usd" | "budget_period">;

const RANK = { high: 0, normal: 1, low: 2 } as const;

function parseLimits(form: LimitsForm, errors: FieldErrors): Limits {
  const limits: Limits = {};
  for (const field of ["rpm_limit", "tpm_limit", "max_concurrency", "token_quota"] as const) {
    const v = optionalInt(form[field]);
    if (typeof v === "string") errors[field] = v;
    else limits[field] = v;
  }
  const budget = optionalNumber(form.budget_usd);
  if (typeof budget === "string") errors.budget_usd = budget;
  else limits.budget_usd = budget;
  limits.budget_period = form.budget_period || null;
  if (form.budget_period && budget === null && limits.token_quota == null) {
    errors.budget_period = "A budget period needs a budget or a token quota.";
  }
  return limits;
}

/** The body of POST /api/keys, or the errors to show beside the fields. */
export function parseKeyForm(form: KeyForm, now = new Date()): Parsed<Schemas["KeyCreate"]> {
  const errors: FieldErrors = {};
  const name = form.name.trim();
  if (!name) errors.name = "Give the key a name, so you can recognise it later.";
  else if (name.length > 200) errors.name = "Keep the name under 200 characters.";
  const limits = parseLimits(form, errors);
  let expires: string | null = null;
  if (form.expires_at) {
    const when = new Date(form.expires_at);
    if (Number.isNaN(when.getTime())) errors.expires_at = "Enter a valid date and time.";
    else if (when <= now) errors.expires_at = "The expiry must be in the future.";
    else expires = when.toISOString();
  }
  if (form.max_priority && RANK[form.max_priority] > RANK[form.default_priority]) {
    errors.max_priority = "The highest priority cannot be below the default priority.";
  }
  if (Object.keys(errors).length) return { ok: false, errors };
  const body: Schemas["KeyCreate"] = {
    name,
    role: form.role,
    expires_at: expires,
    allowed_models: list(form.allowed_models),
    default_priority: form.default_priority,
    ...limits,
  };
  if (form.max_priority) body.max_priority = form.max_priority;
  return { ok: true, value: body };
}

/** The form's limits for an existing key. */
export function limitsOf(key: ApiKey): LimitsForm {
  const s = (v: number | null): string => (v === null ? "" : String(v));
  return {
    rpm_limit: s(key.rpm_limit),
    tpm_limit: s(key.tpm_limit),
    max_concurrency: s(key.max_concurrency),
    token_quota: s(key.token_quota),
    budget_usd: s(key.budget_usd),
    budget_period: key.budget_period ?? "",
  };
}

/** The body of PATCH /api/keys/{id}: only the limits that changed (empty clears one). */
export function parseLimitsPatch(form: LimitsForm, key: ApiKey): Parsed<Schemas["KeyPatch"]> {
  const errors: FieldErrors = {};
  const limits = parseLimits(form, errors);
  if (Object.keys(errors).length) return { ok: false, errors };
  const patch: Schemas["KeyPatch"] = {};
  for (const field of Object.keys(limits) as (keyof Limits)[]) {
    if ((limits[field] ?? null) !== key[field]) Object.assign(patch, { [field]: limits[field] ?? null });
  }
  return { ok: true, value: patch };
}

/**
 * A member's new key: limits left empty are left out, so the server applies the operator's defaults
 * (a member may not ask for more than those; an admin's empty field means unlimited).
 */
export function withoutEmptyLimits(body: Schemas["KeyCreate"]): Schemas["KeyCreate"] {
  const out: Schemas["KeyCreate"] = { ...body };
  for (const field of ["rpm_limit", "tpm_limit", "max_concurrency", "token_quota", "budget_usd", "budget_period"] as const) {
    if (out[field] === null || out[field] === undefined) delete out[field];
  }
  return out;
}
