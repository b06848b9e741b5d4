/** Test certificates: a CA, a server certificate for localhost / 127.0.0.1, a client certificate (src/cluster/certificates.ts). */
import path from 'node:path';
import { issueCertificate, makeCa } from '../src/cluster/certificates.ts';

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Writes into `dir` a CA named `name` and, signed by it, a server and a client certificate, valid for 2 days. */
export function makeCertificates(dir: string, name = 'test'): TestCertificates {
  const file = (f: string) => path.join(dir, `${name}-${f}`);
  const ca = { keyFile: file('ca.key'), certFile: file('ca.pem') };
  makeCa({ ...ca, subject: `${name} CA`, days: 2 });
  issueCertificate(ca, {
    keyFile: file('server.key'),
    certFile: file('server.pem'),
    subject: 'localhost',
    days: 2,
    usage: 'serverAuth,clientAuth',
    altNames: 'DNS:localhost,IP:127.0.0.1',
  });
  issueCertificate(ca, { keyFile: file('client.key'), certFile: file('client.pem'), subject: 'registry worker', days: 2, usage: 'clientAuth' });
  return { dir, ca: ca.certFile, serverCert: file('server.pem'), serverKey: file('server.key'), clientCert: file('client.pem'), clientKey: file('client.key') };
}
