// Small helpers shared by the forms: parsing optional numbers and key=value lists.

export type FieldErrors = Record<string, string>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

/** "" → null; otherwise a whole number ≥ min, or an error message. */
export function optionalInt(text: string, min = 0): number | null | string {
  const t = text.trim();
  if (t === "") return null;
  if (!/^\d+$/.test(t)) return `Enter a whole number (${min} or more), or leave it empty.`;
  const n = Number(t);
  return n < min ? `Enter ${min} or more.` : n;
}

/** "" → null; otherwise a number > 0 (or ≥ 0 with `allowZero`), or an error message. */
export function optionalNumber(text: string, allowZero = true): number | null | string {
  const t = text.trim();
  if (t === "") return null;
  const n = Number(t);
  if (!Number.isFinite(n)) return "Enter a number, or leave it empty.";
  if (allowZero ? n < 0 : n <= 0) return allowZero ? "Enter 0 or more." : "Enter more than 0.";
  return n;
}

/** "a=1, b=2" or one per line → {a: "1", b: "2"}; an error message for a malformed entry. */
export function keyValues(text: string, keyPattern: RegExp): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const raw of text.split(/[\n,]/)) {
    const item = raw.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    if (eq <= 0) return `"${item}" is not key=value.`;
    const key = item.slice(0, eq).trim();
    if (!keyPattern.test(key)) return `"${key}" is not a valid name.`;
    out[key] = item.slice(eq + 1).trim();
  }
  return out;
}

/** "a, b\nc" → ["a", "b", "c"], or null when empty. */
export function list(text: string): string[] | null {
  const items = text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  return items.length ? [...new Set(items)] : null;
}
