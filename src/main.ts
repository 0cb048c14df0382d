import { ConfigError, loadConfig } from './config/load.js';
import { createLessoncast } from './server.js';

/** Composition root: configuration → server → signals. */
async function main(): Promise<void> {
  // Renewed certificate files (http.tls) are reloaded without a restart on SIGHUP; without TLS it
  // is logged and ignored. Caught from the first moment, as Node's default would end the process.
  let reloadTls = (): unknown => undefined;
  process.on('SIGHUP', () => reloadTls());
  const config = loadConfig();
  const server = await createLessoncast(config);
  reloadTls = () => server.reloadTls();
  const onSignal = (signal: NodeJS.Signals): void => {
    server.stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        server.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await server.start();
  const u = server.url;
  process.stdout.write(
    [
      '',
      `lessoncast is running (node ${config.nodeId})`,
      `  health         ${u}/healthz   ready ${u}/readyz`,
      `  API            ${u}/api/`,
      `  signalling     ${u.replace(/^http/, 'ws')}/ws`,
      `  pages          ${u}/  (instructor, classroom, control room, archive, admin)`,
      '  admin token    npm run token -- --role admin',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  // A setting that is wrong, found while loading or while building the server (recording.dir).
  if (err instanceof ConfigError) {
    process.stderr.write(`lessoncast: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`lessoncast: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
