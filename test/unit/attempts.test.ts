/** Failed sign-in limits (src/http/attempts.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailedAttempts } from '../../src/http/attempts.ts';

const limits = { perAddress: 6, perUserAtAddress: 3, windowMs: 60_000 };

describe('failed sign-in limits', () => {
  it('blocks a user at an address after its limit, for the rest of the window', () => {
    const a = new FailedAttempts(limits);
    for (let i = 0; i < 3; i++) a.fail('admin', '10.0.0.1', 1000 + i);
    assert.equal(a.blockedFor('admin', '10.0.0.1', 2000), 60_000 - 1000);
    assert.equal(a.blockedFor('admin', '10.0.0.1', 61_001), 0);
  });

  it('does not lock the user out elsewhere, nor other users at that address until the address limit', () => {
    const a = new FailedAttempts(limits);
    for (let i = 0; i < 3; i++) a.fail('admin', '10.0.0.1', 1000);
    assert.equal(a.blockedFor('admin', '10.0.0.2', 1001), 0);
    assert.equal(a.blockedFor('viewer', '10.0.0.1', 1001), 0);
    for (let i = 0; i < 3; i++) a.fail('viewer', '10.0.0.1', 1000);
    assert.ok(a.blockedFor('anyone', '10.0.0.1', 1001) > 0, 'the address is blocked after 6 failures');
  });

  it('a success clears the user at that address, not the address', () => {
    const a = new FailedAttempts(limits);
    for (let i = 0; i < 2; i++) a.fail('admin', '10.0.0.1', 1000);
    a.succeed('admin', '10.0.0.1');
    a.fail('admin', '10.0.0.1', 1000);
    assert.equal(a.blockedFor('admin', '10.0.0.1', 1001), 0);
  });

  it('keeps bounded memory under a flood of addresses', () => {
    const a = new FailedAttempts(limits);
    for (let i = 0; i < 30_000; i++) a.fail(`u${i}`, `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 1000);
    assert.ok((a as unknown as { failures: Map<string, number[]> }).failures.size <= 10_000);
  });
});
