import { parse } from 'csv-parse/sync';
import { clipForMessage } from './clip.js';
import type { Culprit } from './types.js';

/** One parsed CSV row with its 1-based line number. */
export interface CsvRow {
  line: number;
  fields: string[];
}

/** Result of reading a small CSV file line by line. */
export interface CsvTable {
  /** Header fields (lower-cased, trimmed). */
  header: string[];
  /** Line of the header (1 unless blank lines precede it). */
  headerLine: number;
  rows: CsvRow[];
  /** Lines that could not be parsed at all (e.g. an unclosed quote). */
  culprits: Culprit[];
}

/**
 * Parses CSV text one physical line at a time with csv-parse, so that a broken line (unclosed quote, stray
 * characters) spoils only itself and every problem is reported with its line number. Blank lines are skipped.
 * Fields are trimmed. Lines without quotes take a fast path (split on commas), others go through csv-parse. Quoted fields spanning several lines are not supported (image names never need them).
 */
export function parseCsvLines(text: string, file: string): CsvTable {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const rows: CsvRow[] = [];
  const culprits: Culprit[] = [];
  let header: string[] | undefined;
  let headerLine = 0;
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const fields = raw.includes('"') ? parseQuotedLine(raw) : raw.split(',').map((f) => f.trim());
    if (fields instanceof Error) {
      culprits.push({ file, line, reason: 'malformed_row', message: `cannot parse row: ${clipForMessage(fields.message.replace(/ at line \d+/, ''), 300)}` });
      return;
    }
    if (header === undefined) {
      header = fields.map((f) => f.toLowerCase());
      headerLine = line;
    } else {
      rows.push({ line, fields });
    }
  });
  return { header: header ?? [], headerLine, rows, culprits };
}

/** Parses one line that contains quotes with csv-parse; returns the error instead of throwing. */
function parseQuotedLine(raw: string): string[] | Error {
  try {
    const recs = parse(raw, { trim: true, relax_column_count: true, skip_empty_lines: true }) as string[][];
    return recs[0] ?? [];
  } catch (e) {
    return e as Error;
  }
}
