/** Pieces every long-running `taskmgr` command shares: option parsing and the stop signal. */
import { InvalidArgumentError } from 'commander';
import type { Logger } from '../log.ts';
import { isControlCharacter } from '../shared.ts';

export const intOption = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
};

/**
 * Resolves on the first SIGINT/SIGTERM and stays subscribed: one Ctrl-C reaches us several times
 * (from the terminal, forwarded by npm), and a signal with no listener would kill us mid-shutdown.
 * A signal a few seconds after the first (Ctrl-C pressed again) forces the exit.
 */
export function stopSignal(logger: Logger): Promise<string> {
  let first = 0;
  return new Promise((resolve) => {
    const handler = (sig: string) => {
      if (!first) {
        first = Date.now();
        logger.info({ signal: sig }, 'stopping (press Ctrl-C again to force)');
        resolve(sig);
      } else if (Date.now() - first > 2000) {
        logger.warn('forced exit');
        process.exit(130);
      }
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/** Text from tasks or the database, safe to print: control characters (escape sequences) are shown as \uXXXX. */
export const printable = (s: string) => Array.from(s, (c) => (isControlCharacter(c) ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)).join('');

/** Like printable, keeping line breaks: for multi-line output we lay out ourselves. */
export const terminalSafe = (text: string) => text.split('\n').map(printable).join('\n');

/** One shell word for any string: single-quoted, with embedded quotes closed and escaped. */
export const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
