/** The HTML report of a run: what ran, the per-case metrics table and the figures (written by predict and demo). */
import path from 'node:path';
import type { CaseEvaluation, EvaluationJson, EvaluationSummary } from '@brats/metrics';
import { writeReport, type ReportBlock } from '@brats/io';

/** What one predicted case contributes to a report. */
export interface ReportCase {
  id: string;
  volumesMl: Record<string, number>;
  evaluation?: CaseEvaluation;
  figures: string[];
  /** What the user must know about the case's input (constant images, extra frames, repaired voxels). */
  warnings?: string[];
  /** One line per choice the segmentation made for this case (spacing, preprocessing, flips, labels). */
  reasons?: string[];
  /** The reasons the terminal shows beside the case: a resampled scan, a tumour segmented beyond the model's window. */
  notices?: string[];
}

/** Per-case table rows (Dice and HD95 per region when a reference exists, volumes always). */
export function caseTable(cases: readonly ReportCase[], regions: readonly string[]): ReportBlock {
  const withReference = cases.some((c) => c.evaluation !== undefined);
  const columns = ['case', ...regions.map((r) => `${r} volume (mL)`)];
  if (withReference) for (const region of regions) columns.push(`${region} Dice`, `${region} HD95 (mm)`);
  const rows = cases.map((c) => {
    const row: (string | number | null)[] = [c.id, ...regions.map((r) => c.volumesMl[r] ?? null)];
    if (withReference) {
      for (const region of regions) {
        const values = c.evaluation?.regions[region as 'WT'];
        row.push(values?.dice ?? null, values?.hd95 ?? null);
      }
    }
    return row;
  });
  return { kind: 'table', columns, rows };
}

/** Summary table: mean, median and std of Dice and HD95 per region. */
export function summaryTable(summary: EvaluationSummary): ReportBlock {
  const rows = Object.entries(summary.regions).map(([region, metrics]) => [
    region,
    metrics.dice.mean,
    metrics.dice.median,
    metrics.dice.std,
    metrics.hd95.mean,
    metrics.hd95.median,
  ]);
  return { kind: 'table', columns: ['region', 'Dice mean', 'Dice median', 'Dice std', 'HD95 mean (mm)', 'HD95 median (mm)'], rows };
}

/**
 * Dice and HD95 per region of each case and their mean, from an evaluation file (`brats evaluate --out`, the
 * pipeline's), and the lesion-wise Dice where the file holds it.
 */
export function evaluationFileTable(evaluation: EvaluationJson, regions: readonly string[]): ReportBlock {
  const lesionWise = evaluation.lesionWise !== undefined;
  const columns = ['case', ...regions.flatMap((region) => [`${region} Dice`, `${region} HD95 (mm)`, ...(lesionWise ? [`${region} lesion-wise Dice`] : [])])];
  const cell = (row: Record<string, unknown>, region: string, metric: 'dice' | 'hd95'): number | null => (row[region] as Record<string, number | null> | undefined)?.[metric] ?? null;
  const lesionCell = (row: Record<string, unknown>, region: string): number | null => (row[region] as { lesionWise?: { dice: number } } | undefined)?.lesionWise?.dice ?? null;
  const rows: (string | number | null)[][] = evaluation.cases.map((row) => [
    row.id ?? '',
    ...regions.flatMap((region) => [cell(row, region, 'dice'), cell(row, region, 'hd95'), ...(lesionWise ? [lesionCell(row, region)] : [])]),
  ]);
  const summary = evaluation.summary as Record<string, Record<'dice' | 'hd95', { mean: number | null }> & { lesionWiseDice?: { mean: number | null } }>;
  rows.push([
    `mean of ${evaluation.caseCount}`,
    ...regions.flatMap((region) => [summary[region]?.dice.mean ?? null, summary[region]?.hd95.mean ?? null, ...(lesionWise ? [summary[region]?.lesionWiseDice?.mean ?? null] : [])]),
  ]);
  return { kind: 'table', columns, rows };
}

/** Figure blocks for every case's figures, with paths relative to the report. */
export function figureBlocks(reportPath: string, cases: readonly ReportCase[]): ReportBlock[] {
  return cases.flatMap((c) =>
    c.figures.map((figure) => ({ kind: 'figure' as const, src: path.relative(path.dirname(reportPath), figure), caption: `${c.id}: ${path.basename(figure, '.png')}` })),
  );
}

export { writeReport };
