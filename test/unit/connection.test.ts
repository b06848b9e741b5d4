/** What the worker's TLS stack says when a certificate is wrong, turned into a message naming the setting (src/client/connection.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configurationProblem, credentialsRefused, isUpdateLimitReached, tlsProblem } from '../../src/client/connection.ts';

// As the SDK's native connection reports them (seen against a Temporal server demanding mTLS).
const transport = (source: string) => Object.assign(new Error(`tonic::transport::Error(Transport, ${source})`), { name: 'TransportError' });

describe('TLS problems that retrying will not mend', () => {
  it('names the setting for each kind of certificate error', () => {
    assert.match(
      tlsProblem(transport('ConnectError(Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) })'))!,
      /^the server's certificate is not signed by a CA we trust \(TEMPORAL_TLS_SERVER_CA_CERT_PATH\) \(UnknownIssuer\); check /,
    );
    assert.match(
      tlsProblem(
        transport('ConnectError(Custom { kind: InvalidData, error: InvalidCertificate(NotValidForNameContext { expected: DnsName("example.org") }) })'),
      )!,
      /not valid for the name we expect \(TEMPORAL_TLS_SERVER_NAME\)/,
    );
    assert.match(
      tlsProblem(
        new Error('Failed to call GetSystemInfo', {
          cause: transport('hyper::Error(Io, Custom { kind: InvalidData, error: "received fatal alert: CertificateRequired" })'),
        }),
      )!,
      /requires a client certificate/,
    );
    assert.match(
      tlsProblem(transport('hyper::Error(Io, Custom { kind: InvalidData, error: "received fatal alert: BadCertificate" })'))!,
      /refused our client certificate/,
    );
    assert.match(tlsProblem(transport('InvalidCertificate(Other(OtherError(UnsupportedCertVersion)))'))!, /X\.509 version 1/);
    assert.match(tlsProblem(transport('InvalidCertificate(Expired)'))!, /expired/);
  });

  it('leaves outages alone: a server not up yet is waited for', () => {
    assert.equal(tlsProblem(transport('ConnectError("tcp connect error", 127.0.0.1:7233, Os { code: 111, kind: ConnectionRefused })')), undefined);
    assert.equal(tlsProblem(new Error('Failed to connect before the deadline')), undefined);
    assert.equal(tlsProblem(undefined), undefined);
  });
});

describe('credentials the server refused', () => {
  it("reads a coded gRPC refusal and the worker core's text alike, naming TEMPORAL_API_KEY", () => {
    const coded = Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), { code: 7, details: 'Request unauthorized.' });
    assert.match(
      credentialsRefused(new Error('start failed', { cause: coded }), '127.0.0.1:7233')!.message,
      /^Temporal at 127\.0\.0\.1:7233 refused the call \(PermissionDenied: Request unauthorized\.\): check that TEMPORAL_API_KEY/,
    );
    const core = new Error(
      'Namespace default was not found or otherwise could not be described: Status { code: Unauthenticated, message: "Jwt is expired", details: b"" }',
    );
    assert.match(credentialsRefused(core, 'h:1')!.message, /refused the call \(Unauthenticated: Jwt is expired\)/);
  });

  it('leaves other errors alone; configurationProblem is either kind, or nothing for an outage', () => {
    assert.equal(credentialsRefused(Object.assign(new Error('unavailable'), { code: 14 }), 'h:1'), undefined);
    assert.match(configurationProblem(transport('InvalidCertificate(Expired)'), 'h:1')!.message, /^TLS with Temporal at h:1 failed: a certificate is expired/);
    assert.match(configurationProblem(Object.assign(new Error('x'), { code: 16 }), 'h:1')!.message, /refused the call \(Unauthenticated/);
    assert.equal(configurationProblem(new Error('Failed to connect before the deadline'), 'h:1'), undefined);
  });
});

describe("the server's update limit", () => {
  // As the client SDK reports it: a ServiceError whose cause carries the gRPC code and details.
  const refused = (code: number, details: string) =>
    Object.assign(new Error('Workflow Update failed'), { cause: Object.assign(new Error(details), { code, details }) });

  it('is recognised in the cause of the error, so that a merge leaves the add its own task', () => {
    assert.equal(
      isUpdateLimitReached(refused(9, 'The limit on the total number of distinct updates in this workflow has been reached (2000). Make sure any duplicate …')),
      true,
    );
  });

  it('is not confused with other refusals or outages', () => {
    assert.equal(isUpdateLimitReached(refused(9, 'workflow execution already completed')), false);
    assert.equal(isUpdateLimitReached(refused(14, 'The limit on the total number of distinct updates')), false);
    assert.equal(isUpdateLimitReached(new Error('anything')), false);
  });
});
