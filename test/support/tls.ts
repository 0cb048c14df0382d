import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';

const root = path.resolve(import.meta.dirname, '..', '..');

/** scripts/make-ca.sh as an operator runs it; throws with its output when it fails. */
export function makeCa(outDir: string, names: string[], options: string[] = []): { stderr: string } {
  const r = spawnSync('bash', [path.join(root, 'scripts', 'make-ca.sh'), ...options, outDir, ...names], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`make-ca.sh exited ${r.status}: ${r.stderr}`);
  return { stderr: r.stderr };
}

/**
 * A server certificate for 127.0.0.1 from the CA in `caDir` with chosen dates (openssl ca, which
 * takes -startdate/-enddate as YYYYMMDDHHMMSSZ): expired, not yet valid or about to expire. Writes
 * `<name>.crt` (chain) and `<name>.key` into caDir.
 */
export function issueWithDates(caDir: string, name: string, startDate: Date, endDate: Date): { certFile: string; keyFile: string } {
  const work = mkdtempSync(path.join(caDir, '.issue-'));
  try {
    const stamp = (d: Date) =>
      d
        .toISOString()
        .replace(/[-:T]/g, '')
        .replace(/\.\d+Z$/, 'Z');
    writeFileSync(path.join(work, 'index.txt'), '');
    writeFileSync(path.join(work, 'serial'), '01\n');
    writeFileSync(
      path.join(work, 'ca.cnf'),
      [
        '[ ca ]',
        'default_ca = test_ca',
        '[ test_ca ]',
        `database = ${work}/index.txt`,
        `new_certs_dir = ${work}`,
        `serial = ${work}/serial`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        '[ any ]',
        'commonName = supplied',
        '[ server ]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = serverAuth',
        'subjectAltName = IP:127.0.0.1',
        '[ req ]',
        'distinguished_name = dn',
        '[ dn ]',
      ].join('\n'),
    );
    const keyFile = path.join(caDir, `${name}.key`);
    const certFile = path.join(caDir, `${name}.crt`);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
    openssl(['req', '-new', '-config', `${work}/ca.cnf`, '-key', keyFile, '-subj', `/CN=${name}`, '-out', `${work}/req.csr`]);
    openssl([
      'ca',
      '-batch',
      '-notext',
      '-rand_serial',
      '-config',
      `${work}/ca.cnf`,
      '-extensions',
      'server',
      '-cert',
      path.join(caDir, 'ca.crt'),
      '-keyfile',
      path.join(caDir, 'ca.key'),
      '-startdate',
      stamp(startDate),
      '-enddate',
      stamp(endDate),
      '-in',
      `${work}/req.csr`,
      '-out',
      `${work}/leaf.crt`,
    ]);
    writeFileSync(certFile, readFileSync(`${work}/leaf.crt`, 'utf8') + readFileSync(path.join(caDir, 'ca.crt'), 'utf8'));
    return { certFile, keyFile };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A command-line tool that must succeed; its stdout. */
function tool(name: string, args: string[]): string {
  const r = spawnSync(name, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`${name}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new Error(`${name} ${args[0]} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export const openssl = (args: string[]): string => tool('openssl', args);
/** NSS's certutil (Debian libnss3-tools), for the database Chromium trusts on Linux. */
export const certutil = (args: string[]): string => tool('certutil', args);

/** The first (server) certificate of a PEM chain file. */
export const leafOf = (certFile: string): X509Certificate => new X509Certificate(readFileSync(certFile));

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Serial of the certificate the server presented on this (new) connection. */
  peerSerial: string;
}

/**
 * One request on a new TLS connection (no agent, so no reused session or socket): what the server
 * presents now. `ca` undefined = Node's default trust store only.
 */
export function httpsRequest(
  url: string,
  opts: { ca?: Buffer | string; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false, ...(opts.ca ? { ca: opts.ca } : {}) },
      (res) => {
        const peerSerial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), peerSerial }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
