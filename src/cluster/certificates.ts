/** X.509 certificates made with openssl: a CA, and certificates it signs (version 3, which the worker's TLS stack requires). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function openssl(dir: string, ...args: string[]) {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new Error('openssl is needed to make TLS certificates (apt-get install openssl); `taskmgr cluster --no-auth` runs without them', { cause: err });
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? e.message}`, { cause: err });
  }
}

/** A self-signed CA: its key and certificate. */
export function makeCa(ca: { keyFile: string; certFile: string; subject: string; days: number }): void {
  openssl(
    path.dirname(ca.certFile),
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    String(ca.days),
    '-subj',
    `/CN=${ca.subject}`,
    '-keyout',
    ca.keyFile,
    '-out',
    ca.certFile,
  );
}

/**
 * A key and a certificate signed by `ca`, for `usage` (serverAuth, clientAuth or both, comma-
 * separated) and, for a server, the names it answers to (e.g. "DNS:localhost,IP:127.0.0.1").
 */
export function issueCertificate(
  ca: { keyFile: string; certFile: string },
  cert: { keyFile: string; certFile: string; subject: string; days: number; usage: string; altNames?: string },
): void {
  const dir = path.dirname(cert.certFile);
  const base = cert.certFile.replace(/\.pem$/, '');
  const csr = `${base}.csr`;
  const ext = `${base}.ext`;
  fs.writeFileSync(ext, `${cert.altNames ? `subjectAltName=${cert.altNames}\n` : ''}extendedKeyUsage=${cert.usage}\n`);
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cert.subject}`, '-keyout', cert.keyFile, '-out', csr);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-days',
    String(cert.days),
    '-out',
    cert.certFile,
    '-extfile',
    ext,
  );
  fs.rmSync(csr);
  fs.rmSync(ext);
}
