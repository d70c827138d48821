/** A self-contained HTML report: opens from disk with no server and no network request. */
import { writeFileAtomic } from '../atomic.js';

/** One section of a report. */
export type ReportBlock =
  | { kind: 'heading'; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'table'; columns: readonly string[]; rows: readonly (readonly (string | number | null)[])[] }
  | { kind: 'figure'; src: string; caption: string }
  | { kind: 'code'; text: string };

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function cell(value: string | number | null): string {
  if (value === null) return '<td class="na">n/a</td>';
  if (typeof value === 'number') {
    const text = Number.isNaN(value) ? 'NaN' : Number.isInteger(value) ? String(value) : value.toFixed(4);
    return `<td class="num">${text}</td>`;
  }
  return `<td>${escapeHtml(value)}</td>`;
}

/**
 * Renders a report as one HTML page with inline CSS; figures are referenced by relative path (PNG files
 * beside the report), so the folder can be opened or zipped as it is.
 */
export function renderReportHtml(title: string, blocks: readonly ReportBlock[]): string {
  const body = blocks
    .map((block) => {
      switch (block.kind) {
        case 'heading':
          return `<h2>${escapeHtml(block.text)}</h2>`;
        case 'paragraph':
          return `<p>${escapeHtml(block.text)}</p>`;
        case 'code':
          return `<pre>${escapeHtml(block.text)}</pre>`;
        case 'figure':
          return `<figure><img src="${escapeHtml(block.src)}" alt="${escapeHtml(block.caption)}"><figcaption>${escapeHtml(block.caption)}</figcaption></figure>`;
        case 'table':
          return `<table><thead><tr>${block.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${block.rows
            .map((row) => `<tr>${row.map(cell).join('')}</tr>`)
            .join('')}</tbody></table>`;
      }
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.na{color:#999}
figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}

/** Writes a report atomically. */
export async function writeReport(path: string, title: string, blocks: readonly ReportBlock[]): Promise<void> {
  await writeFileAtomic(path, renderReportHtml(title, blocks));
}
