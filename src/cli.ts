import { stringOptions } from './cliArgs.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config/load.js';
import { openCatalog, openDatabase } from './catalog/index.js';
import { migrate } from './catalog/migrations.js';
import { resolveTokenSecret } from './auth/secret.js';
import { TokenService } from './auth/tokens.js';
import { ROLES, type Role } from './domain/index.js';
import { RECORDINGS_USAGE, RecordingsUsageError, recordingsCommand } from './recording/cli.js';
import { COTURN_USAGE, CoturnUsageError, coturnConfigCommand } from './turn/cli.js';

const USAGE = `usage:
  lessoncast token --role <${ROLES.join('|')}> [--id <user or school id>] [--name <display name>]
                   [--lesson <lessonId>]... [--all-lessons] [--ttl <seconds>]
      Mints a signed token with the server's secret (config auth.tokenSecret or auth.secretFile)
      and prints it on stdout (never logged).
${RECORDINGS_USAGE}
  lessoncast tls [--days N] [--ca-days N] <out-dir> <dns-name-or-ip>...
      Makes a private CA in <out-dir> (or reuses ca.key/ca.crt there) and issues server.key and
      server.crt (full chain) for those names and addresses, for http.tls.certFile/keyFile
      (scripts/make-ca.sh, with openssl; docs/tls.md).
${COTURN_USAGE}
  lessoncast db migrate
      Brings the catalog database (config catalog.url, else SQLite at catalog.sqlitePath) to this
      version's schema and prints the versions applied; the server does the same at start.`;

/** `lessoncast tls …`: scripts/make-ca.sh with the same arguments; its exit code is ours. */
function tls(args: string[]): number {
  const script = fileURLToPath(new URL('../scripts/make-ca.sh', import.meta.url));
  const run = spawnSync('bash', [script, ...args], { stdio: 'inherit' });
  if (run.error) throw new Error(`cannot run ${script}: ${run.error.message}`, { cause: run.error });
  return run.status ?? 1;
}

async function token(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      ...stringOptions('role', 'id', 'name'),
      lesson: { type: 'string', multiple: true },
      'all-lessons': { type: 'boolean' },
      ttl: { type: 'string' },
    },
    strict: true,
  });
  const role = values.role as Role | undefined;
  if (!role || !ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
  const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60)) throw new UsageError('--ttl must be an integer number of seconds >= 60');
  const config = loadConfig();
  if (ttl !== undefined && ttl > config.auth.maxTokenTtlSeconds)
    throw new UsageError(`--ttl must be at most auth.maxTokenTtlSeconds (${config.auth.maxTokenTtlSeconds}): longer tokens are refused`);
  const service = new TokenService(
    resolveTokenSecret(config.auth.tokenSecret, config.auth.secretFile),
    config.auth.tokenTtlSeconds,
    config.auth.maxTokenTtlSeconds,
  );
  const lessons = values['all-lessons'] || role === 'admin' || role === 'monitor' || role === 'archivist' ? '*' : (values.lesson ?? []);
  const minted = await service.mint({
    id: values.id ?? role,
    role,
    ...(values.name ? { name: values.name } : {}),
    lessons,
    ...(ttl ? { ttlSeconds: ttl } : {}),
  });
  process.stdout.write(minted.token + '\n');
  process.stderr.write(`token for ${role} "${values.id ?? role}" valid until ${minted.expiresAt}\n`);
}

/** `lessoncast db migrate`: the server's own migration step, alone; prints what it applied. */
async function db(args: string[]): Promise<void> {
  if (args.length !== 1 || args[0] !== 'migrate') throw new UsageError('db takes one subcommand: migrate');
  const config = loadConfig();
  const warn = (obj: object, msg: string): void => void process.stderr.write(`lessoncast: ${msg} ${JSON.stringify(obj)}\n`);
  const database = openDatabase(config.catalog, { info() {}, debug() {}, warn, error: warn });
  try {
    const outcome = await migrate(database);
    for (const m of outcome.applied) process.stdout.write(`applied ${m.version}: ${m.name}\n`);
    process.stdout.write(`catalog ${database.where} at schema version ${outcome.to} (was ${outcome.from})\n`);
  } catch (err) {
    throw new Error(`cannot migrate the catalog database at ${database.where}: ${(err as Error).message}`, { cause: err });
  } finally {
    await database.close();
  }
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'token':
      return token(rest);
    case 'tls':
      process.exitCode = tls(rest);
      return;
    case 'recordings':
      process.exitCode = await recordingsCommand(rest, undefined, {
        // The catalog the server uses, migrated as the server would (reindex fills its archive index).
        openIndex: async (config, log) => {
          const store = await openCatalog(config.catalog, log);
          return { index: store.archiveIndex, where: store.where, close: () => store.close() };
        },
      }).catch((err: unknown) => {
        throw err instanceof RecordingsUsageError ? new UsageError(err.message) : err;
      });
      return;
    case 'db':
      return db(rest);
    case 'coturn-config':
      try {
        return coturnConfigCommand(rest);
      } catch (err) {
        throw err instanceof CoturnUsageError ? new UsageError(err.message) : err;
      }
    default:
      throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    process.stderr.write(`lessoncast: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(64);
  }
  process.stderr.write(`lessoncast: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
  process.exit(1);
});
