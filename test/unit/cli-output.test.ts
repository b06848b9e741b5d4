/** What `taskmgr` prints of task and registry text (src/cli/common.ts). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { printable, shellQuote, terminalSafe } from '../../src/cli/common.ts';
import { isControlCharacter } from '../../src/shared.ts';

describe('taskmgr output', () => {
  it('shows control characters as \\uXXXX: a log line cannot retitle the terminal or hide text', () => {
    const hostile = 'done\u001b]0;pwned\u0007\u001b[2Khidden\r\u009b31m';
    assert.equal(printable(hostile), 'done\\u001b]0;pwned\\u0007\\u001b[2Khidden\\u000d\\u009b31m');
    assert.equal(terminalSafe(`line 1\n${hostile}`).split('\n').length, 2);
    assert.ok(!Array.from(terminalSafe(`a\n${hostile}`)).some((c) => c !== '\n' && isControlCharacter(c)));
  });

  it('quotes a record key as one shell word, whatever it holds', () => {
    for (const key of ["it's/a-key", "x'; rm -rf ~ #", '$(whoami)', 'back`tick`', 'a b\tc']) {
      const echoed = execFileSync('bash', ['-c', `printf %s ${shellQuote(key)}`]).toString();
      assert.equal(echoed, key);
    }
  });
});
