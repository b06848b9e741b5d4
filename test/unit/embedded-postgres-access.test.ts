/**
 * As root, the embedded PostgreSQL runs as `postgres`, which must be able to enter every folder on
 * the way to its data: a private folder (a `mktemp -d`) is named, with the fix, before initdb fails
 * deep inside with "Permission denied". Nothing is started.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startEmbeddedPostgres } from '../../src/dev/embedded-postgres.ts';

describe('embedded PostgreSQL data folder access', () => {
  it(
    'as root, a private parent folder is refused with its name and the chmod to run',
    { skip: os.userInfo().uid !== 0 && 'only root hands the data to the postgres user' },
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-private-'));
      try {
        fs.chmodSync(dir, 0o700);
        await assert.rejects(startEmbeddedPostgres({ dir: path.join(dir, 'data', 'pg'), port: 1 }), (err: Error) => {
          assert.match(
            err.message,
            new RegExp(
              `cannot enter ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(mode 700\\): \`chmod o\\+x ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`, choose another DATA_DIR, or set DATABASE_URL`,
            ),
          );
          return true;
        });
        assert.equal(fs.existsSync(path.join(dir, 'data', 'pg', 'PG_VERSION')), false, 'nothing was initialised');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
