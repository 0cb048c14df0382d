import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, Server as TlsServer } from 'node:tls';
import type { Logger } from '../logger.js';

/** Where the certificate chain and its key are read from (http.tls.certFile, http.tls.keyFile). */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A certificate chain and key that were read and checked: what HTTPS serves, and what is logged of it (never the key). */
export interface ServedCertificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectAltName: string;
}

/** Which setting a problem is about: the file is named in the message too. */
export type TlsSetting = 'http.tls.certFile' | 'http.tls.keyFile';

/** A certificate or key file that cannot be served: which setting, which file, what is wrong. */
export class CertificateProblem extends Error {
  constructor(
    readonly setting: TlsSetting,
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${setting}: ${JSON.stringify(file)}: ${problem}`);
    this.name = 'CertificateProblem';
  }
}

/** The certificate's fields for logs: who it names, its serial and when it ends. No key material. */
export const certificateFields = (c: ServedCertificate) => ({
  subject: c.subject,
  issuer: c.issuer,
  serial: c.serial,
  subjectAltName: c.subjectAltName,
  notAfter: c.notAfter.toISOString(),
});

const DAY_MS = 86_400_000;
/** Fewer days than this left on the certificate: a warning in the log, at start, on reload and once a day. */
export const EXPIRY_WARNING_DAYS = 14;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks both files as HTTPS will use them: PEM, a chain whose first certificate is the
 * server's and each next one its issuer, every one valid at `now`, and the key the server
 * certificate's own. Throws a CertificateProblem naming the file and what is wrong.
 */
export function readCertificate(files: TlsFiles, now = new Date()): ServedCertificate {
  const cert = readPem('http.tls.certFile', files.certFile);
  const key = readPem('http.tls.keyFile', files.keyFile);
  const certProblem = (problem: string) => new CertificateProblem('http.tls.certFile', files.certFile, problem);
  const keyProblem = (problem: string) => new CertificateProblem('http.tls.keyFile', files.keyFile, problem);

  const blocks = cert.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw certProblem('not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)');
  const chain = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw certProblem(`certificate ${i + 1} of the file is not a valid PEM certificate (${(err as Error).message})`);
    }
  });
  for (const [i, c] of chain.entries()) {
    const which = i === 0 ? 'the server certificate' : `certificate ${i + 1} of the chain (${c.subject.replace(/\n/g, ', ')})`;
    if (now > c.validToDate) throw certProblem(`${which} expired on ${c.validToDate.toISOString()}`);
    if (now < c.validFromDate) throw certProblem(`${which} is not valid before ${c.validFromDate.toISOString()}`);
    const next = chain[i + 1];
    if (next && !c.checkIssued(next)) {
      throw certProblem(
        `certificate ${i + 2} of the chain did not issue certificate ${i + 1}: put the server certificate first, then each issuer`,
      );
    }
  }
  const leaf = chain[0]!;

  // PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY) or the traditional form (Proc-Type: 4,ENCRYPTED).
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key.toString('latin1'))) {
    throw keyProblem('the key is encrypted: give lessoncast an unencrypted key file (mode 0600)');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw keyProblem(`not a PEM private key (${(err as Error).message})`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw keyProblem(`the key does not match the certificate in ${JSON.stringify(files.certFile)} (${leaf.subject.replace(/\n/g, ', ')})`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw keyProblem(`TLS refuses this certificate and key (${(err as Error).message})`);
  }
  return {
    cert,
    key,
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    serial: leaf.serialNumber,
    notBefore: leaf.validFromDate,
    notAfter: leaf.validToDate,
    subjectAltName: leaf.subjectAltName ?? '',
  };
}

function readPem(setting: TlsSetting, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'not readable by this user (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory, not a file'
            : `cannot be read (${(err as Error).message})`;
    throw new CertificateProblem(setting, file, why);
  }
}

export interface CertificateKeeperOptions {
  files: TlsFiles;
  log: Logger;
  /** The certificate read and checked at start (readCertificate), which `server` was made with. */
  initial: ServedCertificate;
  /** The HTTPS server (Fastify's app.server) reloads go into. */
  server: unknown;
}

/**
 * The certificate HTTPS serves, after start: reloads it on request (SIGHUP) into the listening
 * server, where new connections get the new one and open ones go on; warns in the log while
 * fewer than EXPIRY_WARNING_DAYS are left (at start, on reload, once a day).
 */
export class CertificateKeeper {
  private served: ServedCertificate;
  private readonly server: TlsServer;
  private daily: NodeJS.Timeout | undefined;

  constructor(private readonly opts: CertificateKeeperOptions) {
    if (!(opts.server instanceof TlsServer)) throw new Error('HTTPS is configured but the HTTP server is not a TLS server');
    this.server = opts.server;
    this.served = opts.initial;
  }

  get current(): ServedCertificate {
    return this.served;
  }

  /** Once listening: what is served, and the expiry checked now and once a day. */
  start(): void {
    this.opts.log.info({ ...certificateFields(this.served), certFile: this.opts.files.certFile }, 'serving HTTPS with this certificate');
    this.checkFiles();
    this.daily = setInterval(() => this.checkExpiry(), DAY_MS);
    this.daily.unref();
  }

  /**
   * Reads and checks both files again; on success new connections get the new certificate. On
   * failure the old one stays and the error (naming the file) is logged. Returns whether it swapped.
   */
  reload(now = new Date()): boolean {
    const { log, files } = this.opts;
    let next: ServedCertificate;
    try {
      next = readCertificate(files, now);
    } catch (err) {
      if (!(err instanceof CertificateProblem)) throw err;
      log.error(
        { setting: err.setting, file: err.file, problem: err.problem, kept: certificateFields(this.served) },
        `TLS reload failed, still serving the old certificate: ${err.message}`,
      );
      return false;
    }
    this.server.setSecureContext({ cert: next.cert, key: next.key });
    const previous = this.served;
    this.served = next;
    log.info({ ...certificateFields(next), previousSerial: previous.serial, certFile: files.certFile }, 'TLS certificate reloaded');
    this.checkFiles(now);
    return true;
  }

  /** A warning while fewer than EXPIRY_WARNING_DAYS are left. */
  checkExpiry(now = new Date()): void {
    const daysLeft = (this.served.notAfter.getTime() - now.getTime()) / DAY_MS;
    if (daysLeft >= EXPIRY_WARNING_DAYS) return;
    this.opts.log.warn(
      { ...certificateFields(this.served), certFile: this.opts.files.certFile, daysLeft: Math.floor(daysLeft * 10) / 10 },
      daysLeft <= 0
        ? 'TLS certificate has expired: renew it and send SIGHUP'
        : `TLS certificate expires in less than ${EXPIRY_WARNING_DAYS} days: renew it and send SIGHUP`,
    );
  }

  /** At start and after a reload: the expiry, and a key file others may read (it belongs to its owner: mode 0600). */
  private checkFiles(now = new Date()): void {
    this.checkExpiry(now);
    const mode = statSync(this.opts.files.keyFile, { throwIfNoEntry: false })?.mode;
    if (mode !== undefined && mode & 0o077) {
      const shown = (mode & 0o777).toString(8).padStart(4, '0');
      this.opts.log.warn({ keyFile: this.opts.files.keyFile, mode: shown }, 'TLS key file is readable by group or others: chmod 600 it');
    }
  }

  close(): void {
    clearInterval(this.daily);
  }
}
