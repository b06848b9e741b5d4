/**
 * The Temporal connection takes TLS, mTLS and an API key from configuration (TEMPORAL_TLS_*,
 * TEMPORAL_API_KEY, read by @temporalio/envconfig). The dev server speaks plain gRPC, so the test
 * puts a TLS-terminating HTTP/2 proxy in front of it (certificates made with openssl here) that can
 * demand a client certificate, and runs `taskmgr list` through it. A Temporal server that serves
 * mTLS itself, with a worker behind it, is in tls-server.test.ts; tokens in TEMPORAL_API_KEY checked
 * by the server's own JWT authorizer are in test/cluster/authorization.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { makeCertificates, type TestCertificates } from '../certs.ts';
import { temporalAddress } from '../helpers.ts';

const exec = promisify(execFile);
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');

/** An HTTP/2 TLS proxy to the dev server; optionally requires a client certificate. */
function startProxy(certs: TestCertificates, opts: { mtls: boolean }): Promise<{ address: string; close(): void }> {
  const upstream = http2.connect(`http://${temporalAddress()}`);
  const server = http2.createSecureServer({
    key: fs.readFileSync(certs.serverKey),
    cert: fs.readFileSync(certs.serverCert),
    ca: fs.readFileSync(certs.ca),
    requestCert: opts.mtls,
    rejectUnauthorized: opts.mtls,
  });
  server.on('stream', (stream, headers) => {
    const forward: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') || k === ':method' || k === ':path') forward[k] = v;
    const up = upstream.request(forward);
    stream.pipe(up);
    up.on('response', (h) => {
      const { [':status']: status, ...rest } = h;
      stream.respond({ ':status': status, ...rest }, { waitForTrailers: true });
      up.pipe(stream);
    });
    up.on('trailers', (t) => stream.once('wantTrailers', () => stream.sendTrailers(t)));
    up.on('error', () => stream.destroy());
    stream.on('error', () => up.destroy());
  });
  server.on('error', () => undefined);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({ address: `127.0.0.1:${port}`, close: () => (server.close(), upstream.close()) });
    }),
  );
}

describe('TLS, mTLS and API keys for the Temporal connection', () => {
  let dir: string;
  let certs: TestCertificates;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-tls-'));
    certs = makeCertificates(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const list = async (env: Record<string, string>) => {
    try {
      const { stdout } = await exec(process.execPath, [BIN, 'list', '--json'], {
        env: { PATH: process.env.PATH!, HOME: os.homedir(), LOG_LEVEL: 'error', ...env },
        timeout: 60_000,
      });
      return { code: 0, out: stdout };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, out: e.stderr };
    }
  };

  it('connects over TLS with the server CA from TEMPORAL_TLS_SERVER_CA_CERT_PATH, and refuses an unknown server', async () => {
    const proxy = await startProxy(certs, { mtls: false });
    try {
      const ok = await list({
        TEMPORAL_ADDRESS: proxy.address,
        TEMPORAL_TLS: 'true',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
        TEMPORAL_TLS_SERVER_NAME: 'localhost',
      });
      assert.equal(ok.code, 0, ok.out);
      assert.ok(Array.isArray(JSON.parse(ok.out).tasks));
      const untrusted = await list({ TEMPORAL_ADDRESS: proxy.address, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_NAME: 'localhost' });
      assert.notEqual(untrusted.code, 0);
      assert.match(untrusted.out, /^taskmgr: /m);
      const plain = await list({ TEMPORAL_ADDRESS: proxy.address });
      assert.notEqual(plain.code, 0, 'plain gRPC to a TLS port fails');
    } finally {
      proxy.close();
    }
  });

  it('presents the client certificate from TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH where the server demands one (mTLS)', async () => {
    const proxy = await startProxy(certs, { mtls: true });
    try {
      const tls = { TEMPORAL_ADDRESS: proxy.address, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca, TEMPORAL_TLS_SERVER_NAME: 'localhost' };
      const withCert = await list({ ...tls, TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey });
      assert.equal(withCert.code, 0, withCert.out);
      const without = await list(tls);
      assert.notEqual(without.code, 0, 'no client certificate, no connection');
    } finally {
      proxy.close();
    }
  });
});
