// Time-series and stacked bar charts (recharts), sized by their container.
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

export const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

export interface SeriesSpec {
  key: string;
  name: string;
}

export function LineSeries({
  title,
  data,
  x,
  series,
  unit,
  area = false,
}: {
  title: string;
  data: readonly object[];
  x: string;
  series: SeriesSpec[];
  unit?: string;
  area?: boolean;
}) {
  const Chart = area ? AreaChart : LineChart;
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {data.length < 2 ? (
        <p className="muted chart-empty">Collecting points: the chart fills in as the page keeps polling.</p>
      ) : (
        <ResponsiveContainer width="100%" height={180}>
          <Chart data={data as object[]} margin={{ top: 8, right: 12, left: 0, bottom: 0 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
            <XAxis dataKey={x} tick={{ fontSize: 11 }} minTickGap={40} />
            <YAxis tick={{ fontSize: 11 }} width={48} unit={unit} />
            <Tooltip />
            {series.length > 1 && <Legend wrapperStyle={{ fontSize: 12 }} />}
            {series.map((s, i) =>
              area ? (
                <Area key={s.key} type="monotone" dataKey={s.key} name={s.name} stroke={COLORS[i % COLORS.length]} fill={COLORS[i % COLORS.length]} fillOpacity={0.15} isAnimationActive={false} />
              ) : (
                <Line key={s.key} type="monotone" dataKey={s.key} name={s.name} stroke={COLORS[i % COLORS.length]} dot={false} isAnimationActive={false} connectNulls />
              ),
            )}
          </Chart>
        </ResponsiveContainer>
      )}
    </figure>
  );
}

export function StackedBars({ title, data, names, unit }: { title: string; data: readonly object[]; names: string[]; unit?: string }) {
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <ResponsiveContainer width="100%" height={220}>
        <BarChart data={data as object[]} margin={{ top: 8, right: 12, left: 0, bottom: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="period" tick={{ fontSize: 11 }} />
          <YAxis tick={{ fontSize: 11 }} width={72} unit={unit} />
          <Tooltip />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          {names.map((n, i) => (
            <Bar key={n} dataKey={n} stackId="a" fill={COLORS[i % COLORS.length]} isAnimationActive={false} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

export function Stat({ label, value, hint }: { label: string; value: string; hint?: string }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
      {hint && <div className="stat-hint muted">{hint}</div>}
    </div>
  );
}

/** A horizontal bar: used / total. */
export function Meter({ label, used, total, text }: { label: string; used: number; total: number; text: string }) {
  const ratio = total > 0 ? Math.min(1, used / total) : 0;
  return (
    <div className="meter">
      <div className="meter-label">
        <span>{label}</span>
        <span>{text}</span>
      </div>
      <div className="meter-track" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={total} aria-valuenow={used}>
        <div className={`meter-fill${ratio > 0.9 ? " meter-high" : ""}`} style={{ width: `${(ratio * 100).toFixed(1)}%` }} />
      </div>
    </div>
  );
}
