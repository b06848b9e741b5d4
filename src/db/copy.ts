/**
 * Bulk loading with COPY ... FROM STDIN (text format): rows stream to the server as they are
 * produced, so a million-row load neither builds one huge statement nor holds every row in memory.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from './pool.ts';

export type CopyValue = string | number | boolean | null | readonly string[];

/** Rows per chunk written to the stream: large enough to keep the round trips few. */
const CHUNK_ROWS = 2_000;

/** Streams rows into `COPY <target> FROM STDIN` on the client (inside its transaction, if any); returns the row count. */
export async function copyRows(client: PoolClient, target: string, rows: Iterable<readonly CopyValue[]>): Promise<number> {
  let count = 0;
  function* chunks(): Generator<string> {
    let lines: string[] = [];
    for (const row of rows) {
      lines.push(row.map(copyField).join('\t'));
      count++;
      if (lines.length === CHUNK_ROWS) {
        yield lines.join('\n') + '\n';
        lines = [];
      }
    }
    if (lines.length) yield lines.join('\n') + '\n';
  }
  await pipeline(Readable.from(chunks()), client.query(copyFrom(`COPY ${target} FROM STDIN`)));
  return count;
}

/** One field in COPY's text format: \N for NULL, backslash escapes for the characters COPY reads as structure. */
export function copyField(value: CopyValue): string {
  if (value === null) return '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number') return String(value);
  return escapeText(typeof value === 'string' ? value : arrayLiteral(value));
}

/** A text[] literal: every element double-quoted, with its quotes and backslashes escaped. */
function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

function escapeText(text: string): string {
  return text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}
