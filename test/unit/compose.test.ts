/** No Docker engine runs here: check docker-compose.yml by reading it. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { COMPOSE, composeConfigFiles, DEFAULT_PORTS, dynamicConfigYaml, LOCAL_NETWORK, serverConfig, serverProcesses } from '../../src/cluster/layout.ts';

const root = path.join(import.meta.dirname, '..', '..');
// Compose applies YAML merge keys (<<: *temporal-server).
const compose = parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true });
const services: Record<string, Record<string, unknown>> = compose.services;
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Service names the README's production section lists as "- `name`: ...". */
function readmeServices(): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Production'));
  assert.ok(section, 'the README has a "Production" section');
  // A bullet may name several services before its colon.
  const bullets = [...section.matchAll(/^- ([^:]+):/gm)].map((m) => m[1]!);
  return bullets.flatMap((b) => [...b.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1]!));
}

describe('docker-compose.yml', () => {
  it('parses and has PostgreSQL, the schema job, the five Temporal server processes of the cluster layout, the setup job, the Web UI, the worker, the page, Prometheus and Grafana', () => {
    const servers = serverProcesses(DEFAULT_PORTS).map(COMPOSE.serviceOf);
    assert.deepEqual(
      Object.keys(services).sort(),
      ['grafana', 'postgresql', 'prometheus', 'task-manager', 'temporal-schema', 'temporal-setup', 'temporal-ui', 'worker', ...servers].sort(),
    );
  });

  it('Prometheus scrapes every worker replica and the page with the rules tested by promtool; Grafana is provisioned with its dashboard', () => {
    const prom = parse(fs.readFileSync(path.join(root, 'observability', 'prometheus', 'prometheus.yml'), 'utf8'));
    assert.deepEqual(prom.rule_files, ['registry-taskmgr.rules.yml']);
    const jobs = Object.fromEntries((prom.scrape_configs as { job_name: string }[]).map((j) => [j.job_name, j as Record<string, any>]));
    assert.deepEqual(jobs['registry-worker']!.dns_sd_configs, [{ names: ['worker'], type: 'A', port: 9464 }]);
    assert.equal((services.worker!.environment as Record<string, string>).METRICS_ADDRESS, '0.0.0.0:9464');
    assert.equal(jobs['registry-task-manager']!.metrics_path, '/api/metrics');
    assert.equal(jobs['registry-task-manager']!.basic_auth.username, 'viewer');
    assert.ok((services.prometheus!.volumes as string[]).includes('./observability/prometheus:/etc/prometheus:ro'));
    assert.ok((services.grafana!.volumes as string[]).some((v) => v.startsWith('./observability/grafana/dashboards:')));
    assert.match((services.grafana!.environment as Record<string, string>).GF_SECURITY_ADMIN_PASSWORD!, /^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
  });

  it('names every service the README mentions, and the README mentions every service', () => {
    assert.deepEqual(readmeServices().sort(), Object.keys(services).sort());
  });

  it('gives every long-running service a health check, and waits on them', () => {
    for (const name of ['postgresql', 'temporal-frontend', 'temporal-ui', 'worker', 'task-manager', 'prometheus', 'grafana'])
      assert.ok(services[name]!.healthcheck, `${name} has a healthcheck`);
    assert.deepEqual(services['temporal-schema']!.depends_on, { postgresql: { condition: 'service_healthy' } });
    assert.deepEqual(services['temporal-history-1']!.depends_on, { 'temporal-schema': { condition: 'service_completed_successfully' } });
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

  it('runs each server process on the committed config rendered from the layout `npm run cluster` uses (npm run render-compose-config)', () => {
    const files = composeConfigFiles();
    const dir = path.join(root, COMPOSE.configDir);
    assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(files).sort());
    for (const [name, text] of Object.entries(files)) assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), text, `${name} is as rendered`);
    for (const p of serverProcesses(DEFAULT_PORTS)) {
      const svc = services[COMPOSE.serviceOf(p)]!;
      assert.match(JSON.stringify(svc.command), new RegExp(`--env ${p.name} .*--service ${p.service}`));
      assert.ok((svc.volumes as string[]).includes(`./${COMPOSE.configDir}:${COMPOSE.mountedAt}:ro`));
      assert.ok((svc.environment as Record<string, string>).TEMPORAL_DB_PASSWORD, 'the password comes by environment');
    }
  });

  it('agrees with the local cluster: same services, shards, persistence and visibility stores, dynamic config; only addresses differ', () => {
    const all = serverProcesses(DEFAULT_PORTS);
    const render = (network: typeof LOCAL_NETWORK, store: typeof COMPOSE.store, p: (typeof all)[number]) =>
      serverConfig({ process: p, all, store, historyShards: COMPOSE.historyShards, dynamicConfigFile: 'x', logLevel: 'info', network });
    const local = { ...COMPOSE.store, host: '127.0.0.1', port: 5433 };
    for (const p of all) {
      const [a, b] = [render(LOCAL_NETWORK, local, p), render(COMPOSE.network, COMPOSE.store, p)];
      assert.deepEqual(Object.keys(a.services), Object.keys(b.services));
      assert.equal(a.persistence.numHistoryShards, b.persistence.numHistoryShards);
      for (const store of ['default', 'visibility'] as const) {
        const [x, y] = [a.persistence.datastores[store].sql, b.persistence.datastores[store].sql];
        assert.deepEqual({ ...x, connectAddr: '' }, { ...y, connectAddr: '' });
      }
    }
    assert.equal(composeConfigFiles()['dynamicconfig.yaml'], dynamicConfigYaml());
  });

  it('gives Temporal and the registry roles of their own: the registry connects as registry, not as the superuser', () => {
    const init = fs.readFileSync(path.join(root, 'docker', 'postgres-init', '01-roles.sh'), 'utf8');
    assert.match(init, /CREATE DATABASE registry OWNER registry/);
    assert.match(init, /CREATE DATABASE temporal_visibility OWNER temporal/);
    for (const name of ['worker', 'task-manager'])
      assert.match((services[name]!.environment as Record<string, string>).DATABASE_URL!, /^postgres:\/\/registry:/);
    assert.equal((services['temporal-schema']!.environment as Record<string, string>).SQL_USER, 'temporal');
  });

  it('serves the page with Secure cookies and HSTS (behind a TLS proxy)', () => {
    assert.equal((services['task-manager']!.environment as Record<string, string>).HTTP_SECURE_COOKIES, 'true');
  });
});
