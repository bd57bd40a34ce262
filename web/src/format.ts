// Number and date formats shared by the views.

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

export function num(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (Math.abs(v) >= 100000) return compact.format(v);
  return v.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function money(v: number | null | undefined, currency = "USD"): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (Math.abs(v) >= 100000) return compact.format(v) + " " + currency;
  return v.toLocaleString("en", { style: "currency", currency });
}

export function minor(v: number | null | undefined, currency = "USD"): string {
  return v === null || v === undefined ? "–" : money(v / 100, currency);
}

export function pct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return (v * 100).toFixed(digits) + "%";
}

export function signedPct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  return (v >= 0 ? "+" : "") + (v * 100).toFixed(1) + "%";
}

/** "2024-10-01T00:00:00Z" -> "Oct 2024" (month), "2024-10-01" (day). */
export function period(iso: string, granularity: "month" | "week" | "day" | "hour" = "day"): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (granularity === "month") {
    return d.toLocaleString("en", { month: "short", year: "numeric", timeZone: "UTC" });
  }
  if (granularity === "hour") return iso.slice(0, 16).replace("T", " ");
  return iso.slice(0, 10);
}

/** YYYY-MM-DD of `iso` plus `days`. */
export function addDays(day: string, days: number): string {
  const d = new Date(day.slice(0, 10) + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
