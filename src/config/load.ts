import { readFileSync, existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { Type, type TSchema, type TObject } from 'typebox';
import { Value } from 'typebox/value';
import type { TLocalizedValidationError } from 'typebox/error';
import { ConfigSchema, RETIRED_SETTINGS, type Config } from './schema.js';
import { parseTurnUrl } from './turnUrls.js';

export type { Config } from './schema.js';

/** A start-stopping configuration problem. `issues` name key, value and what is allowed. */
export class ConfigError extends Error {
  constructor(
    readonly issues: string[],
    options?: ErrorOptions,
  ) {
    super(`invalid configuration:\n  - ${issues.join('\n  - ')}`, options);
    this.name = 'ConfigError';
  }
}

/**
 * Environment variables with our prefix that belong to the scripts (setup, the worker build, apt),
 * not to the server's settings: a server the scripts start inherits them. Tests and benches name
 * their own variables without the prefix (TEST_*, BENCH_*).
 */
const TOOLING_ENV = new Set([
  'LESSONCAST_CACHE_DIR',
  'LESSONCAST_WORKER',
  'LESSONCAST_SKIP_APT',
  'LESSONCAST_CONFIG_DIR',
  'LESSONCAST_NODE',
  'LESSONCAST_APT_LOCK_TIMEOUT',
  'LESSONCAST_DEBIAN_SOURCE_URIS',
  'LESSONCAST_WORKER_SRTP',
  'LESSONCAST_SRTP_SUITE',
  'LESSONCAST_KEEP_BUILD_DIR',
]);

export interface LoadOptions {
  /** Folder holding default.json and <NODE_ENV>.json. */
  configDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra values merged last (tests). */
  overrides?: DeepPartial<Config>;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** The resolved configuration: the validated file/env values plus what is derived from them. */
export interface ResolvedConfig extends Config {
  readonly publicUrl: string;
  readonly announcedAddress: string;
  readonly configDir: string;
}

export const defaultConfigDir = (): string => path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'config');

export function loadConfig(opts: LoadOptions = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const configDir = opts.configDir ?? env['LESSONCAST_CONFIG_DIR'] ?? defaultConfigDir();
  const issues: string[] = [];

  const defaults = readJson(path.join(configDir, 'default.json'), issues, true);
  let merged: unknown = defaults ?? {};
  const nodeEnv = env['NODE_ENV'];
  if (nodeEnv) {
    const envFile = path.join(configDir, `${nodeEnv}.json`);
    if (existsSync(envFile)) merged = deepMerge(merged, readJson(envFile, issues, false) ?? {});
  }
  merged = deepMerge(merged, envOverrides(env, issues));
  if (opts.overrides) merged = deepMerge(merged, opts.overrides);
  if (defaults === undefined) throw new ConfigError(issues);

  for (const keys of Value.Errors(ConfigSchema, merged).flatMap(offendingKeys)) {
    const key = keys.join('.') || '(root)';
    const value = valueAt(merged, keys);
    const sub = schemaAt(ConfigSchema, keys);
    if (value === undefined) issues.push(`${key}: missing; allowed: ${sub ? describe(sub) : 'see config/default.json'}`);
    else if (!sub) issues.push(retiredIssue(key) ?? `${key}: unknown setting (value ${JSON.stringify(value)})`);
    else issues.push(`${key}: ${JSON.stringify(value)} is not allowed; allowed: ${describe(sub)}`);
  }
  if (issues.length) throw new ConfigError(dedupe(issues));
  const cfg = merged as Config;

  const links = cfg.media.links;
  // Resuming below the pause threshold would pause and resume the same link over and over.
  if (links.pauseBelowKbps > 0 && links.resumeAboveKbps < links.pauseBelowKbps) {
    issues.push(
      `media.links.resumeAboveKbps: ${links.resumeAboveKbps} is not allowed; allowed: at least media.links.pauseBelowKbps (${links.pauseBelowKbps})`,
    );
  }
  if (cfg.media.rtcMinPort > cfg.media.rtcMaxPort) {
    issues.push(`media.rtcMinPort: ${cfg.media.rtcMinPort} is not allowed; allowed: at most media.rtcMaxPort (${cfg.media.rtcMaxPort})`);
  }
  if (cfg.metrics.token !== '' && cfg.metrics.token.length < 16) {
    issues.push(
      `metrics.token: (hidden, ${cfg.metrics.token.length} chars) is not allowed; allowed: at least 16 characters, or empty to leave /metrics open`,
    );
  }
  if (cfg.auth.tokenSecret !== '' && cfg.auth.tokenSecret.length < 32) {
    issues.push(
      `auth.tokenSecret: (hidden, ${cfg.auth.tokenSecret.length} chars) is not allowed; allowed: at least 32 characters, or empty to generate one`,
    );
  }
  if (cfg.http.publicUrl !== '' && !/^https?:\/\/[^\s]+$/.test(cfg.http.publicUrl)) {
    issues.push(`http.publicUrl: ${JSON.stringify(cfg.http.publicUrl)} is not allowed; allowed: an http(s):// URL or empty`);
  }
  if (cfg.redis.url !== '' && !/^rediss?:\/\//.test(cfg.redis.url)) {
    issues.push(`redis.url: (hidden) is not allowed; allowed: redis:// or rediss:// URL, or empty for in-process live state`);
  }
  if (cfg.catalog.url !== '' && !/^postgres(ql)?:\/\//.test(cfg.catalog.url)) {
    issues.push(
      'catalog.url: (hidden) is not allowed; allowed: a postgres:// or postgresql:// URL, or empty for SQLite at catalog.sqlitePath',
    );
  }
  if (cfg.cluster.enabled) {
    if (!cfg.redis.url) issues.push('cluster.enabled: true is not allowed without redis.url; allowed: false, or set redis.url');
    if (!cfg.catalog.url)
      issues.push('cluster.enabled: true is not allowed without catalog.url; allowed: false, or a shared PostgreSQL in catalog.url');
    if (cfg.cluster.pipeAddress && !isIP(cfg.cluster.pipeAddress))
      issues.push(
        `cluster.pipeAddress: ${JSON.stringify(cfg.cluster.pipeAddress)} is not allowed; allowed: an IP address other nodes reach, or empty`,
      );
    if (Buffer.byteLength(cfg.cluster.secret) < 32)
      issues.push('cluster.secret: (hidden) is not allowed; allowed: at least 32 characters, the same on every node, when cluster.enabled');
  }
  if (cfg.auth.tokenTtlSeconds > cfg.auth.maxTokenTtlSeconds) {
    issues.push(
      `auth.tokenTtlSeconds: ${cfg.auth.tokenTtlSeconds} is not allowed; allowed: at most auth.maxTokenTtlSeconds (${cfg.auth.maxTokenTtlSeconds})`,
    );
  }
  issues.push(...httpsIssues(cfg.http));
  if (['0.0.0.0', '::'].includes(cfg.media.listenIp) && !cfg.media.announcedAddress) {
    issues.push(
      `media.announcedAddress: "" is not allowed when media.listenIp is ${cfg.media.listenIp}; allowed: the address clients reach this node at`,
    );
  }
  issues.push(...turnIssues(cfg), ...iceTcpIssues(cfg.media));
  if (issues.length) throw new ConfigError(issues);

  const hostForUrl = cfg.http.host === '0.0.0.0' || cfg.http.host === '::' ? '127.0.0.1' : cfg.http.host;
  return Object.freeze({
    ...cfg,
    nodeId: cfg.nodeId || `${hostname()}-${process.pid}`,
    publicUrl: (cfg.http.publicUrl || `${tlsEnabled(cfg.http) ? 'https' : 'http'}://${hostForUrl}:${cfg.http.port}`).replace(/\/$/, ''),
    announcedAddress: cfg.media.announcedAddress || cfg.media.listenIp,
    configDir,
  });
}

/** Whether lessoncast serves HTTPS itself (http.tls.certFile and keyFile set). */
export const tlsEnabled = (http: Pick<Config['http'], 'tls'>): boolean => http.tls.certFile !== '' && http.tls.keyFile !== '';

/** Names proxy-addr takes besides addresses and CIDRs (Fastify's trustProxy). */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** http.tls (both files or neither), http.redirectPort (only with TLS) and http.trustProxy (addresses, CIDRs). */
function httpsIssues(http: Config['http']): string[] {
  const out: string[] = [];
  const { certFile, keyFile } = http.tls;
  if ((certFile === '') !== (keyFile === '')) {
    const [set, unset] = certFile ? ['certFile', 'keyFile'] : ['keyFile', 'certFile'];
    out.push(`http.tls.${unset}: "" is not allowed when http.tls.${set} is set; allowed: both files (PEM), or neither for plain HTTP`);
  }
  if (http.redirectPort !== 0 && !tlsEnabled(http)) {
    out.push(
      `http.redirectPort: ${http.redirectPort} is not allowed without http.tls.certFile and keyFile; allowed: 0 (a proxy in front redirects instead)`,
    );
  }
  if (http.redirectPort !== 0 && http.redirectPort === http.port) {
    out.push(`http.redirectPort: ${http.redirectPort} is not allowed; allowed: a port other than http.port, or 0`);
  }
  for (const entry of http.trustProxy) {
    if (!isProxyRange(entry)) {
      out.push(
        `http.trustProxy: ${JSON.stringify(entry)} is not allowed; allowed: IP addresses or CIDRs (10.0.0.5, 10.0.0.0/24, ::1), or ${PROXY_RANGE_NAMES.join(', ')}`,
      );
    }
  }
  return out;
}

function isProxyRange(entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/** TURN: well-formed URLs, and a long enough secret whenever URLs are given (the secret itself is never shown). */
function turnIssues({ turn }: Config): string[] {
  const issues: string[] = [];
  turn.urls.forEach((url, i) => {
    const parsed = parseTurnUrl(url);
    if (typeof parsed === 'string') issues.push(`turn.urls[${i}]: ${JSON.stringify(url)} is not allowed: ${parsed}`);
  });
  if (turn.secret !== '' && !/^[A-Za-z0-9+/=._~-]+$/.test(turn.secret)) {
    issues.push(
      'turn.secret: (hidden) is not allowed; allowed: letters, digits and + / = . _ ~ - only (it goes into turnserver.conf; `openssl rand -hex 32` makes one)',
    );
  } else if (turn.urls.length > 0 && turn.secret.length < 32) {
    issues.push(
      `turn.secret: (hidden, ${turn.secret.length} chars) is not allowed when turn.urls is set; allowed: at least 32 characters, coturn's static-auth-secret (\`openssl rand -hex 32\`)`,
    );
  }
  if (turn.relaySchools.length > 0 && turn.urls.length === 0) {
    issues.push(
      `turn.relaySchools: ${JSON.stringify(turn.relaySchools)} is not allowed when turn.urls is empty; allowed: [] (a school forced to relay needs a TURN server)`,
    );
  }
  return issues;
}

function iceTcpIssues({ iceTcp }: Config['media']): string[] {
  const unspecified = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';
  if (unspecified(iceTcp.listenIp) && !iceTcp.announcedAddress) {
    return [
      `media.iceTcp.announcedAddress: "" is not allowed when media.iceTcp.listenIp is ${iceTcp.listenIp}; allowed: the address clients reach ICE-TCP at`,
    ];
  }
  return [];
}

function readJson(file: string, issues: string[], required: boolean): unknown {
  if (!existsSync(file)) {
    if (required) issues.push(`${file}: file not found`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    issues.push(`${file}: not valid JSON (${(err as Error).message})`);
    return undefined;
  }
}

/** `media.webRtcServerPort` → `LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT`. */
export function envName(keyPath: string[]): string {
  return 'LESSONCAST_' + keyPath.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every leaf setting with its env name, derived from the schema. */
export function settingLeaves(
  schema: TObject = ConfigSchema,
  prefix: string[] = [],
): Array<{ path: string[]; schema: TSchema; env: string }> {
  const out: Array<{ path: string[]; schema: TSchema; env: string }> = [];
  for (const [key, sub] of Object.entries(schema.properties)) {
    const p = [...prefix, key];
    if (Type.IsObject(sub)) out.push(...settingLeaves(sub, p));
    else out.push({ path: p, schema: sub, env: envName(p) });
  }
  return out;
}

/** A setting that was removed: its key, that it is gone, and why (RETIRED_SETTINGS). */
function retiredIssue(key: string): string | undefined {
  const why = RETIRED_SETTINGS[key];
  return why === undefined ? undefined : `${key}: no longer a setting: ${why}`;
}

function envOverrides(env: NodeJS.ProcessEnv, issues: string[]): Record<string, unknown> {
  const leaves = settingLeaves();
  const known = new Map(leaves.map((l) => [l.env, l]));
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('LESSONCAST_') || raw === undefined || TOOLING_ENV.has(name)) continue;
    const leaf = known.get(name);
    if (!leaf) {
      const retired = Object.keys(RETIRED_SETTINGS).find((key) => envName(key.split('.')) === name);
      issues.push(retired ? `${retiredIssue(retired)} (from ${name})` : `${name}: unknown setting; known: ${[...known.keys()].join(', ')}`);
      continue;
    }
    const value = coerce(raw, leaf.schema);
    if (value === undefined) {
      const shown = /SECRET|URL/.test(name) ? '(hidden)' : JSON.stringify(raw);
      issues.push(`${leaf.path.join('.')} (from ${name}): ${shown} is not allowed; allowed: ${describe(leaf.schema)}`);
      continue;
    }
    setPath(out, leaf.path, value);
  }
  return out;
}

function coerce(raw: string, schema: TSchema): unknown {
  if (Type.IsInteger(schema)) return /^-?\d+$/.test(raw.trim()) ? Number(raw) : undefined;
  if (Type.IsNumber(schema)) return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : undefined;
  if (Type.IsArray(schema)) return listFromEnv(raw);
  if (Type.IsBoolean(schema)) {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    return undefined;
  }
  return raw;
}

/**
 * A list setting from one variable: a JSON array (`["a","b"]`), else comma-separated (`a,b`);
 * empty = []. The items are then checked against the schema like any file value.
 */
function listFromEnv(raw: string): unknown {
  const text = raw.trim();
  if (text.startsWith('[')) {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  return text === '' ? [] : text.split(',').map((x) => x.trim());
}

/** A human description of what a schema allows. */
export function describe(schema: TSchema): string {
  const s = schema as TSchema & Record<string, unknown>;
  if (Type.IsInteger(s) || Type.IsNumber(s)) {
    const kind = Type.IsInteger(s) ? 'an integer' : 'a number';
    const min = s['minimum'] as number | undefined;
    const max = s['maximum'] as number | undefined;
    if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
    if (min !== undefined) return `${kind} >= ${min}`;
    return kind;
  }
  if (Type.IsBoolean(s)) return 'true or false';
  if (Type.IsString(s)) return s['minLength'] ? `a non-empty string` : 'a string';
  if (Type.IsUnion(s)) return `one of ${s.anyOf.map((x) => JSON.stringify((x as { const?: unknown }).const)).join(', ')}`;
  if (Type.IsArray(s)) return `a list of ${describe(s.items)} (in a LESSONCAST_* variable: comma-separated or a JSON array)`;
  if (Type.IsObject(s)) return 'an object';
  return JSON.stringify(s);
}

/**
 * The key paths an error is about. `required` and `additionalProperties` errors sit on the
 * object; the setting that is missing or unknown is one of its keys.
 */
function offendingKeys(e: TLocalizedValidationError): string[][] {
  const at = Value.Pointer.Indices(e.instancePath);
  if (e.keyword === 'required') return e.params.requiredProperties.map((k) => [...at, k]);
  if (e.keyword === 'additionalProperties') return e.params.additionalProperties.map((k) => [...at, k]);
  return [at];
}

function valueAt(value: unknown, keys: string[]): unknown {
  return keys.reduce<unknown>((cur, k) => (isPlainObject(cur) ? cur[k] : undefined), value);
}

function schemaAt(schema: TSchema, keys: string[]): TSchema | undefined {
  let cur: TSchema | undefined = schema;
  for (const k of keys) cur = Type.IsObject(cur) && Object.hasOwn(cur.properties, k) ? cur.properties[k] : undefined;
  return cur;
}

function setPath(obj: Record<string, unknown>, p: string[], value: unknown): void {
  let cur = obj;
  for (const k of p.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[p[p.length - 1]!] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
