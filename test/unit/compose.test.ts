/** No Docker engine runs here: check docker-compose.yml by reading it. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const root = path.join(import.meta.dirname, '..', '..');
const compose = parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'));
const services: Record<string, Record<string, unknown>> = compose.services;
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Service names the README's production section lists as "- `name`: ...". */
function readmeServices(): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Production'));
  assert.ok(section, 'the README has a "Production" section');
  return [...section.matchAll(/^- `([a-z-]+)`/gm)].map((m) => m[1]!);
}

describe('docker-compose.yml', () => {
  it('parses and has PostgreSQL, Temporal, its search-attribute setup, the Web UI, the worker and the task manager page', () => {
    assert.deepEqual(Object.keys(services).sort(), ['postgresql', 'task-manager', 'temporal', 'temporal-setup', 'temporal-ui', 'worker']);
  });

  it('names every service the README mentions, and the README mentions every service', () => {
    assert.deepEqual(readmeServices().sort(), Object.keys(services).sort());
  });

  it('gives every long-running service a health check, and waits on them', () => {
    for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker', 'task-manager']) assert.ok(services[name]!.healthcheck, `${name} has a healthcheck`);
    assert.deepEqual(services.temporal!.depends_on, { postgresql: { condition: 'service_healthy' } });
    assert.equal((services.worker!.depends_on as Record<string, { condition: string }>)['temporal-setup']!.condition, 'service_completed_successfully');
  });

  it('keeps the worker scalable: no container name, no host port', () => {
    assert.equal(services.worker!.container_name, undefined);
    assert.equal(services.worker!.ports, undefined);
  });

  it('publishes ports on loopback only', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const p of (svc.ports as string[] | undefined) ?? []) assert.match(p, /^127\.0\.0\.1:/, `${name} publishes ${p}`);
    }
  });

  it('runs the task manager page only with an admin password, since it listens beyond loopback inside its container', () => {
    const env = services['task-manager']!.environment as Record<string, string>;
    assert.equal(env.HTTP_HOST, '0.0.0.0');
    assert.match(env.ADMIN_PASSWORD!, /^\$\{ADMIN_PASSWORD:\?/);
  });

  it('registers the search attributes the code uses', async () => {
    const { SEARCH_ATTRIBUTES } = await import('../../src/shared.ts');
    const setup = JSON.stringify(services['temporal-setup']!.command);
    for (const k of SEARCH_ATTRIBUTES) assert.ok(setup.includes(`${k.name}=`), `temporal-setup creates ${k.name}`);
  });

  it('enables update-with-start in the server dynamic config', () => {
    const dc = parse(fs.readFileSync(path.join(root, 'docker', 'temporal-dynamicconfig', 'registry.yaml'), 'utf8'));
    assert.equal(dc['frontend.enableExecuteMultiOperation'][0].value, true);
  });
});
