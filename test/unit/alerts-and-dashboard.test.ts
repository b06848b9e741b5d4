/**
 * The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`, on
 * synthetic series: each alert fires after its `for`, and not before); the Grafana dashboard is
 * the rendering of scripts/render-dashboard.ts's table. promtool is built from the Prometheus Go
 * module (src/dev/go-tools.ts). That every metric they use is exported: metrics.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { findGoTool, PROMTOOL } from '../../src/dev/go-tools.ts';
import { DASHBOARD_FILE, renderDashboard } from '../../scripts/render-dashboard.ts';

const DIR = path.join(import.meta.dirname, '..', '..', 'observability', 'prometheus');
const promtool = (...args: string[]) => execFileSync(findGoTool(PROMTOOL), args, { cwd: DIR, encoding: 'utf8', stdio: 'pipe' });

describe('alerts and dashboard', () => {
  it('the rules are valid and every alert passes its unit test', () => {
    assert.match(promtool('check', 'rules', 'registry-taskmgr.rules.yml'), /SUCCESS: 9 rules found/);
    assert.match(promtool('test', 'rules', 'registry-taskmgr.rules.test.yml'), /SUCCESS/);
  });

  it('every alert has a test, a `for` longer than a deploy, a severity and a description', () => {
    const rules = fs.readFileSync(path.join(DIR, 'registry-taskmgr.rules.yml'), 'utf8');
    const tests = fs.readFileSync(path.join(DIR, 'registry-taskmgr.rules.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    for (const alert of alerts) assert.match(tests, new RegExp(`alertname: ${alert}\\b`), `${alert} is tested`);
    assert.equal([...rules.matchAll(/for: (\d+)m/g)].filter((m) => Number(m[1]) >= 10).length, alerts.length, 'every for is 10 minutes or more');
    assert.equal([...rules.matchAll(/severity: (page|warn)/g)].length, alerts.length);
  });

  it('the committed dashboard is the rendering of its table (npm run render-dashboard)', () => {
    assert.equal(fs.readFileSync(DASHBOARD_FILE, 'utf8'), renderDashboard());
    const dashboard = JSON.parse(renderDashboard()) as { panels: { type: string; targets?: { expr: string }[] }[] };
    assert.ok(dashboard.panels.filter((p) => p.type === 'timeseries').every((p) => p.targets!.length > 0));
  });
});
