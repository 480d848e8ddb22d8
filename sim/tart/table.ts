// tart's `--format text` tables (Formatter/Format.swift, TextTable plain
// style): left-aligned columns separated by one space, no trailing spaces.
export function renderTable(rows: Record<string, string | number>[]): string {
  const [first] = rows;
  if (!first) return "";
  const columns = Object.keys(first).map((name) => ({ name, width: Math.max(name.length, ...rows.map((r) => String(r[name]).length)) }));
  const line = (cell: (column: string) => string) => columns.map(({ name, width }) => cell(name).padEnd(width)).join(" ").trimEnd();
  return [line((name) => name), ...rows.map((r) => line((name) => String(r[name])))].join("\n");
}

export function relativeTime(date: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - date.getTime()) / 1000));
  const units: [number, string][] = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  for (const [size, unit] of units) {
    const n = Math.floor(s / size);
    if (n >= 1) return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
  }
  return "now";
}
