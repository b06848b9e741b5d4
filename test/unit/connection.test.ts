/** What the worker's TLS stack says when a certificate is wrong, turned into a message naming the setting (src/client/connection.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tlsProblem } from '../../src/client/connection.ts';

// As the SDK's native connection reports them (seen against a Temporal server demanding mTLS).
const transport = (source: string) => Object.assign(new Error(`tonic::transport::Error(Transport, ${source})`), { name: 'TransportError' });

describe('TLS problems that retrying will not mend', () => {
  it('names the setting for each kind of certificate error', () => {
    assert.match(tlsProblem(transport('ConnectError(Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) })'))!, /^the server's certificate is not signed by a CA we trust \(TEMPORAL_TLS_SERVER_CA_CERT_PATH\) \(UnknownIssuer\); check /);
    assert.match(tlsProblem(transport('ConnectError(Custom { kind: InvalidData, error: InvalidCertificate(NotValidForNameContext { expected: DnsName("example.org") }) })'))!, /not valid for the name we expect \(TEMPORAL_TLS_SERVER_NAME\)/);
    assert.match(tlsProblem(new Error('Failed to call GetSystemInfo', { cause: transport('hyper::Error(Io, Custom { kind: InvalidData, error: "received fatal alert: CertificateRequired" })') }))!, /requires a client certificate/);
    assert.match(tlsProblem(transport('hyper::Error(Io, Custom { kind: InvalidData, error: "received fatal alert: BadCertificate" })'))!, /refused our client certificate/);
    assert.match(tlsProblem(transport('InvalidCertificate(Other(OtherError(UnsupportedCertVersion)))'))!, /X\.509 version 1/);
    assert.match(tlsProblem(transport('InvalidCertificate(Expired)'))!, /expired/);
  });

  it('leaves outages alone: a server not up yet is waited for', () => {
    assert.equal(tlsProblem(transport('ConnectError("tcp connect error", 127.0.0.1:7233, Os { code: 111, kind: ConnectionRefused })')), undefined);
    assert.equal(tlsProblem(new Error('Failed to connect before the deadline')), undefined);
    assert.equal(tlsProblem(undefined), undefined);
  });
});
