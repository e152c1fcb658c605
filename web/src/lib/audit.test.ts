import { describe, expect, it } from "vitest";
import type { AuditRow } from "../api/views";
import { appendPage, auditQuery, localToIso, noFilters } from "./audit";

const row = (id: number) => ({ id }) as AuditRow;

describe("auditQuery", () => {
  it("sends only the filters given, trimmed, with the organisation and cursor", () => {
    const q = auditQuery({ ...noFilters, actor: " usr_1 ", result: "failure" }, "org_a", "42", 10);
    expect(q).toEqual({ actor: "usr_1", result: "failure", org_id: "org_a", cursor: "42", limit: 10 });
  });
  it("turns local times into instants the server accepts", () => {
    const q = auditQuery({ ...noFilters, since: "2026-03-01T10:00" }, null, null);
    expect(q.since).toBe(new Date("2026-03-01T10:00").toISOString());
    expect(q.org_id).toBeUndefined();
    expect(localToIso("garbage")).toBeUndefined();
  });
});

describe("appendPage", () => {
  it("keeps the order and drops rows already shown", () => {
    expect(appendPage([row(9), row(8)], [row(8), row(7)]).map((r) => r.id)).toEqual([9, 8, 7]);
  });
});
