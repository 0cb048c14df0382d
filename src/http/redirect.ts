import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';

export interface RedirectListenerOptions {
  host: string;
  port: number;
  /** The https URL users reach (http.publicUrl, else where HTTPS listens): every answer points there. */
  target(): string;
  log: Logger;
}

/** The plain-HTTP listener of http.redirectPort: while it runs, `port`; close() ends it and its connections. */
export interface RedirectListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A plain-HTTP listener that does one thing: answer every request with 308 to the same path and
 * query on the HTTPS origin. It serves nothing else, sets no cookie and reads no body; the target
 * comes from configuration, never from the request's Host header, which the client chooses.
 */
export async function startRedirectListener(opts: RedirectListenerOptions): Promise<RedirectListener> {
  const server: Server = createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => {
    const url = req.url ?? '/';
    // Origin-form only ("/path?query"); an absolute or authority form ("http://elsewhere/")
    // goes to the root, so the answer never points anywhere but the HTTPS origin.
    const path = url.startsWith('/') ? url : '/';
    const location = new URL(opts.target()).origin + path;
    res.writeHead(308, { location, 'content-length': '0', connection: 'close', 'cache-control': 'no-store' });
    res.end();
    req.resume();
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info({ host: opts.host, port, target: new URL(opts.target()).origin }, 'plain-HTTP redirect listener');
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
