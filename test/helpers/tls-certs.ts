/**
 * Test certificates made with the openssl CLI in a temporary directory: a CA, a server
 * certificate for 127.0.0.1, and client certificates signed by the CA (or by another CA).
 * Nothing is stored in the repository.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
  /** SHA-256 of the DER certificate, base64url: its RFC 8705 `x5t#S256`. */
  readonly x5tS256: string;
  /** The subject as HAProxy's ssl_c_s_dn prints it by default (`/CN=..`). */
  readonly subjectDn: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  /** Server certificate and key in one PEM (HAProxy's `crt`). */
  readonly serverPem: string;
  client(cn: string, options?: { otherCa?: boolean }): TestCert;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

function ca(dir: string, name: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '2',
    '-out',
    `${name}.crt`,
  ]);
}

function issue(dir: string, name: string, subject: string, caName: string, ext: string): TestCert {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${caName}.crt`,
    '-CAkey',
    `${caName}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
  const cert = readFileSync(join(dir, `${name}.crt`), 'utf8');
  const der = new X509Certificate(cert).raw;
  return {
    cert,
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
    subjectDn: subject,
  };
}

/** A CA, a server certificate for 127.0.0.1/localhost, and a factory for client certificates. */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'spoe-authz-pki-'));
  ca(dir, 'ca');
  const server = issue(
    dir,
    'server',
    '/CN=localhost',
    'ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  let otherCa = false;
  return {
    dir,
    caCert: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    serverPem: `${server.cert}${server.key}`,
    client(cn, options = {}) {
      if (options.otherCa && !otherCa) {
        ca(dir, 'other-ca');
        otherCa = true;
      }
      return issue(
        dir,
        `client-${cn}`,
        `/O=Acme/CN=${cn}`,
        options.otherCa ? 'other-ca' : 'ca',
        'extendedKeyUsage=clientAuth\n',
      );
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
