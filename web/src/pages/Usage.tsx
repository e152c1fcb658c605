// Usage from the ledger: per key, model and day (or hour), as charts and a table, with cost and a
// CSV export. A user key sees its own usage only (the server enforces it).
import { useMemo, useState } from "react";
import { describeError, unwrap } from "../api/client";
import type { ApiKey, ListOf, UsageReport } from "../api/views";
import { useSession } from "../auth";
import { StackedBars, Stat } from "../components/Charts";
import { Field, Select } from "../components/Controls";
import { Empty, ErrorBox, Gate } from "../components/Status";
import { num, usd } from "../lib/format";
import { useLoad } from "../lib/hooks";
import { type Breakdown, breakdown, stack } from "../lib/usage";
import { canSeeUsage, useOrg } from "../org";

interface Filters {
  start: string;
  end: string;
  granularity: "day" | "hour";
  key_id: string;
  model: string;
}

function daysAgo(n: number): string {
  const d = new Date(Date.now() - n * 86400_000);
  return d.toISOString().slice(0, 10);
}

export function Usage() {
  const { client, isAdmin, kind } = useSession();
  const { org, myRole } = useOrg();
  // The chosen organisation scopes the report for those who may read its usage.
  const orgId = org && canSeeUsage(myRole) ? org.id : undefined;
  const [filters, setFilters] = useState<Filters>({ start: daysAgo(13), end: daysAgo(0), granularity: "day", key_id: "", model: "" });
  const [exportError, setExportError] = useState<string | null>(null);
  const query = useMemo(
    () => ({
      start: filters.start || undefined,
      end: filters.end || undefined,
      granularity: filters.granularity,
      key_id: filters.key_id || undefined,
      model: filters.model.trim() || undefined,
      group_by: ["key", "model"] as ("key" | "model")[],
      org_id: orgId,
    }),
    [filters, orgId],
  );
  const report = useLoad(async () => unwrap<UsageReport>(await client.GET("/api/usage", { params: { query } })), [client, query]);
  const keys = useLoad(async () => (isAdmin ? unwrap<ListOf<ApiKey>>(await client.GET("/api/keys")).data : []), [client, isAdmin]);
  const names = useMemo(() => Object.fromEntries((keys.data ?? []).map((k) => [k.id, `${k.name} (${k.prefix}…)`])), [keys.data]);
  const set = (k: keyof Filters, v: string) => setFilters((f) => ({ ...f, [k]: v }));

  async function exportCsv() {
    setExportError(null);
    try {
      const blob = unwrap<Blob>(await client.GET("/api/usage", { params: { query: { ...query, format: "csv" } }, parseAs: "blob" }));
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `gpucloud-usage-${filters.start || "all"}-${filters.end || "now"}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (err) {
      setExportError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <p className="muted">{org && orgId ? `The usage of ${org.name}'s keys, from the ledger.` : isAdmin ? "Every key's usage, from the ledger." : kind === "key" ? "This key's usage, from the ledger." : "Your own usage, from the ledger."} Days and hours are UTC.</p>
      <form className="card filters" onSubmit={(e) => { e.preventDefault(); void report.reload(); }} aria-label="Usage filters">
        <Field label="From" type="date" value={filters.start} onChange={(e) => set("start", e.target.value)} />
        <Field label="To" type="date" value={filters.end} onChange={(e) => set("end", e.target.value)} />
        <Select label="Per" value={filters.granularity} options={[["day", "day"], ["hour", "hour"]]} onChange={(e) => set("granularity", e.target.value)} />
        {isAdmin && <Select label="Key" value={filters.key_id} options={[["", "all keys"], ...(keys.data ?? []).map((k): [string, string] => [k.id, `${k.name} (${k.prefix}…)`])]} onChange={(e) => set("key_id", e.target.value)} />}
        <Field label="Model" value={filters.model} placeholder="all models" onChange={(e) => set("model", e.target.value)} />
        <div className="actions">
          <button type="submit" className="secondary">Refresh</button>
          <button type="button" onClick={exportCsv}>Export CSV</button>
        </div>
      </form>
      {exportError && <ErrorBox title="Export failed">{exportError}</ErrorBox>}
      <Gate {...report} what="usage">
        {(r) => (r.data.length ? <Report report={r} names={names} isAdmin={isAdmin} /> : <Empty>No usage in this period. Requests appear here once they finish.</Empty>)}
      </Gate>
    </section>
  );
}

function Report({ report, names, isAdmin }: { report: UsageReport; names: Record<string, string>; isAdmin: boolean }) {
  const tokens = stack(report.data, "model", "total_tokens");
  const cost = stack(report.data, isAdmin ? "key_id" : "model", "cost_usd", names);
  const t = report.totals;
  return (
    <>
      <div className="stats">
        <Stat label="Requests" value={num(t.requests)} />
        <Stat label="Tokens" value={num(t.total_tokens)} hint={`${num(t.prompt_tokens)} in, ${num(t.completion_tokens)} out`} />
        <Stat label="Cost" value={usd(t.cost_usd)} />
      </div>
      <div className="charts">
        <StackedBars title={`Tokens per ${report.granularity}, by model`} data={tokens.rows} names={tokens.names} />
        <StackedBars title={`Cost (USD) per ${report.granularity}, by ${isAdmin ? "key" : "model"}`} data={cost.rows} names={cost.names} />
      </div>
      <div className="two">
        {isAdmin && <BreakdownTable title="By key" rows={breakdown(report.data, "key_id", names)} />}
        <BreakdownTable title="By model" rows={breakdown(report.data, "model")} />
      </div>
      <h2>Every {report.granularity}</h2>
      <div className="table-wrap">
        <table data-testid="usage-table">
          <thead>
            <tr><th>{report.granularity === "day" ? "Day" : "Hour"}</th>{isAdmin && <th>Key</th>}<th>Model</th><th className="num">Requests</th><th className="num">Prompt</th><th className="num">Completion</th><th className="num">Cost</th></tr>
          </thead>
          <tbody>
            {report.data.map((row) => (
              <tr key={`${row.period}|${row.key_id}|${row.model}`}>
                <td>{row.period}</td>
                {isAdmin && <td>{row.key_id ? names[row.key_id] ?? row.key_id : "—"}</td>}
                <td>{row.model ?? "—"}</td>
                <td className="num">{num(row.requests)}</td>
                <td className="num">{num(row.prompt_tokens)}</td>
                <td className="num">{num(row.completion_tokens)}</td>
                <td className="num">{usd(row.cost_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function BreakdownTable({ title, rows }: { title: string; rows: Breakdown[] }) {
  return (
    <div className="table-wrap">
      <table>
        <caption>{title}</caption>
        <thead><tr><th>Name</th><th className="num">Requests</th><th className="num">Tokens</th><th className="num">Cost</th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name}><td>{r.name}</td><td className="num">{num(r.requests)}</td><td className="num">{num(r.total_tokens)}</td><td className="num">{usd(r.cost_usd)}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
