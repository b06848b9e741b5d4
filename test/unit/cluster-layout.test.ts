/** The cluster's shape and configuration (src/cluster/layout.ts), as `taskmgr cluster` writes it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_PORTS,
  LOCAL_NETWORK,
  DYNAMIC_CONFIG,
  dynamicConfigYaml,
  serverConfig,
  serverProcesses,
  SQL_PLUGIN,
  uiConfig,
  type SqlStore,
} from '../../src/cluster/layout.ts';

const store: SqlStore = { host: '127.0.0.1', port: 5433, user: 'temporal', databases: { persistence: 'temporal', visibility: 'temporal_visibility' } };
const all = serverProcesses(DEFAULT_PORTS);
const render = (name: string) =>
  serverConfig({
    process: all.find((p) => p.name === name)!,
    all,
    store,
    historyShards: 4,
    dynamicConfigFile: '/x/dynamicconfig.yaml',
    logLevel: 'warn',
    network: LOCAL_NETWORK,
  });

describe('the cluster layout', () => {
  it('runs frontend, matching, worker and two history processes, history first, each on its own loopback ports', () => {
    assert.deepEqual(
      all.map((p) => p.name),
      ['history-1', 'history-2', 'matching', 'frontend', 'worker'],
    );
    const ports = all.flatMap((p) => [p.grpcPort, p.membershipPort, ...(p.httpPort ? [p.httpPort] : [])]);
    assert.equal(new Set(ports).size, ports.length, 'no port is used twice');
    // The server keeps membership ports in a smallint column.
    assert.ok(all.every((p) => p.membershipPort <= 32767));
    for (const p of all) assert.equal((render(p.name).services as Record<string, { rpc: { bindOnLocalHost: boolean } }>)[p.service]!.rpc.bindOnLocalHost, true);
  });

  it('gives each history process its own ports and the same shards, persistence and visibility in PostgreSQL', () => {
    const [h1, h2] = [render('history-1'), render('history-2')];
    assert.notEqual(h1.services.history.rpc.grpcPort, h2.services.history.rpc.grpcPort);
    assert.deepEqual(h1.persistence, h2.persistence);
    assert.ok(h1.persistence.numHistoryShards > 1);
    for (const store of Object.values(h1.persistence.datastores)) assert.equal(store.sql.pluginName, SQL_PLUGIN);
    assert.equal(h1.persistence.datastores.visibility.sql.databaseName, 'temporal_visibility');
    // Every process finds the frontend at the same address.
    assert.equal(h1.publicClient?.hostPort, `127.0.0.1:${DEFAULT_PORTS.frontend}`);
  });

  it('secured: TLS and the default JWT authorizer on the public frontend only; the others reach an internal frontend through membership', () => {
    const secured = serverProcesses(DEFAULT_PORTS, { internalFrontend: true });
    assert.deepEqual(
      secured.map((p) => p.name),
      ['history-1', 'history-2', 'matching', 'internal-frontend', 'frontend', 'worker'],
    );
    const security = { certFile: '/a/frontend.pem', keyFile: '/a/frontend.key', jwksUrl: 'http://127.0.0.1:1/jwks.json' };
    for (const p of secured) {
      const config = serverConfig({
        process: p,
        all: secured,
        store,
        historyShards: 4,
        dynamicConfigFile: '/x',
        logLevel: 'warn',
        network: LOCAL_NETWORK,
        security,
      });
      assert.equal(config.publicClient, undefined, `${p.name}: the server refuses publicClient beside an internal frontend`);
      assert.ok('internal-frontend' in config.services);
      const { authorization, tls } = config.global;
      assert.equal(authorization?.authorizer, 'default');
      assert.equal(authorization?.claimMapper, 'default');
      assert.deepEqual(authorization?.jwtKeyProvider.keySourceURIs, [security.jwksUrl]);
      assert.equal(tls?.frontend.server.certFile, security.certFile);
      assert.deepEqual(Object.keys(tls ?? {}), ['frontend'], 'internal traffic stays plain, on loopback');
    }
    const ports = secured.flatMap((p) => [p.grpcPort, p.membershipPort, ...(p.httpPort ? [p.httpPort] : [])]);
    assert.equal(new Set(ports).size, ports.length, 'no port is used twice');
  });

  it('keeps the server defaults: no dynamic config overrides', () => {
    assert.deepEqual(DYNAMIC_CONFIG, {});
    assert.match(dynamicConfigYaml(), /^# .*default/);
  });

  it('serves the Web UI on loopback with write actions as configured', () => {
    const ui = uiConfig({ frontendAddress: '127.0.0.1:7233', uiPort: 8233, namespace: 'default', writeActions: false });
    assert.equal(ui.host, '127.0.0.1');
    assert.equal(ui.disableWriteActions, true);
    assert.equal(uiConfig({ frontendAddress: '127.0.0.1:7233', uiPort: 8233, namespace: 'default', writeActions: true }).disableWriteActions, false);
  });
});
