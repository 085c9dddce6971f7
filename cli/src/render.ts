// Output formats, independent of what is shown: a view (e.g. views/stats-view.ts) gives columns
// and rows, these functions lay them out. Tables are for people; JSON, NDJSON and CSV for programs.

export type OutputFormat = "table" | "json" | "ndjson" | "csv";

export const OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "json", "ndjson", "csv"];

export interface Column {
  title: string;
  align: "left" | "right";
}

/** A fixed-width text table; every cell is already a string. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? "";
        const width = widths[i] ?? 0;
        return c.align === "right" ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  return `${[line(columns.map((c) => c.title)), ...rows.map(line)].join("\n")}\n`;
}

// RFC 4180: quote a field that holds a comma, quote or line break; double the quotes inside.
function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV record with its line ending (for rows written as they arrive). */
export function renderCsvRow(row: readonly (string | number)[]): string {
  return `${row.map(csvField).join(",")}\r\n`;
}

export function renderCsv(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  return [header, ...rows].map(renderCsvRow).join("");
}

/** Exactly one JSON document. */
export function renderJson(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** One JSON document per line, to be written as soon as each is known. */
export function renderNdjsonLine(record: unknown): string {
  return `${JSON.stringify(record)}\n`;
}
