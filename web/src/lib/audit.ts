// The audit page's filters as the query of GET /api/audit, and its pages joined in order.
import type { AuditRow } from "../api/views";

export interface AuditFilters {
  actor: string;
  action: string;
  target: string;
  result: "" | "success" | "failure";
  /** `datetime-local` values, in the browser's time zone. */
  since: string;
  until: string;
}

export const noFilters: AuditFilters = { actor: "", action: "", target: "", result: "", since: "", until: "" };

export interface AuditQuery {
  actor?: string;
  action?: string;
  target?: string;
  result?: "success" | "failure";
  since?: string;
  until?: string;
  org_id?: string;
  cursor?: string;
  limit?: number;
}

/** A `datetime-local` value as an ISO instant (the server needs a time zone), or undefined. */
export function localToIso(value: string): string | undefined {
  if (!value) return undefined;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

/** The query for `filters` in organisation `orgId` (null: every organisation, for platform admins). */
export function auditQuery(filters: AuditFilters, orgId: string | null, cursor: string | null, limit = 50): AuditQuery {
  const q: AuditQuery = { limit };
  for (const field of ["actor", "action", "target"] as const) {
    const v = filters[field].trim();
    if (v) q[field] = v;
  }
  if (filters.result) q.result = filters.result;
  const since = localToIso(filters.since);
  const until = localToIso(filters.until);
  if (since) q.since = since;
  if (until) q.until = until;
  if (orgId) q.org_id = orgId;
  if (cursor) q.cursor = cursor;
  return q;
}

/** `more` after `rows`, without any row twice (a row can shift pages while new ones arrive). */
export function appendPage(rows: readonly AuditRow[], more: readonly AuditRow[]): AuditRow[] {
  const seen = new Set(rows.map((r) => r.id));
  return [...rows, ...more.filter((r) => !seen.has(r.id))];
}
