import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { LessoncastError } from '../errors.js';

/** Clean page paths → built HTML files (web/dist, made by scripts/build-web.mjs). */
export const WEB_PAGES: Readonly<Record<string, string>> = {
  '/': 'index.html',
  '/studio': 'studio.html',
  '/classroom': 'classroom.html',
  '/control': 'control.html',
  '/archive': 'archive.html',
  '/admin': 'admin.html',
};

/** web/dist next to src/ (or dist/ when compiled): both sit one level under the project root. */
export function defaultWebDir(): string {
  return fileURLToPath(new URL('../../web/dist/', import.meta.url));
}

export interface WebRoutesOptions {
  dir?: string;
  /**
   * The URL users reach this node at (http.publicUrl, else where it listens): the one WebSocket
   * origin the pages may open. Taken from configuration, never from the request's Host header,
   * which the client chooses.
   */
  publicUrl(): string;
}

/** `https://lessons.example` → `wss://lessons.example`: where the pages' sockets (/ws, the live feed) go. */
export function socketOrigin(publicUrl: string): string {
  const u = new URL(publicUrl);
  return `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}`;
}

/**
 * Everything a page may load comes from this server (data centres may be offline; no CDNs). Tokens
 * travel in the URL fragment, which browsers never send, and no-referrer keeps URLs from leaking.
 */
function pageHeaders(reply: FastifyReply, publicUrl: string): void {
  void reply
    .header(
      'content-security-policy',
      [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        `connect-src 'self' ${socketOrigin(publicUrl)}`,
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
      ].join('; '),
    )
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('permissions-policy', 'camera=(self), microphone=(self), display-capture=(self), fullscreen=(self)')
    .header('cache-control', 'no-cache');
}

/** Serves the browser pages and their assets. A missing build answers 503 with how to build it. */
export async function registerWebRoutes(app: FastifyInstance, opts: WebRoutesOptions): Promise<void> {
  const dir = opts.dir ?? defaultWebDir();
  await app.register(fastifyStatic, {
    root: path.join(dir, 'assets'),
    prefix: '/assets/',
    // The build writes .br/.gz beside each file; browsers that accept them get them.
    preCompressed: true,
    // Entry names are stable across builds: revalidate (ETag) rather than cache blindly.
    cacheControl: true,
    maxAge: 0,
    index: false,
    setHeaders: (reply) => {
      void reply.header('x-content-type-options', 'nosniff');
    },
  });
  if (!existsSync(path.join(dir, 'index.html'))) app.log.warn({ dir }, 'web pages are not built (node scripts/build-web.mjs)');

  for (const [route, file] of Object.entries(WEB_PAGES)) {
    app.get(route, { schema: { summary: `The ${file.replace(/\.html$/, '')} page` } }, async (_req, reply) => {
      if (!existsSync(path.join(dir, file)))
        throw new LessoncastError('UNAVAILABLE', 'the web pages are not built: run node scripts/build-web.mjs');
      pageHeaders(reply, opts.publicUrl());
      return reply.type('text/html; charset=utf-8').sendFile(file, dir);
    });
  }
}
