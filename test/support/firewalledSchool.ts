/**
 * A school whose network lets nothing through but TCP to the web server's port: a network
 * namespace made by the test, joined to this host by a veth pair, with an nftables output policy
 * of drop in the namespace (no UDP, no ICE-TCP, no TURN). Chromium runs inside it through a
 * wrapper script (`ip netns exec`); the server listens on the host end of the pair. Needs root
 * (CI runs as root); where the namespace cannot be made, `create` throws with the reason.
 */
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TABLE = 'lessoncast_oneway';

export interface FirewalledSchool {
  ns: string;
  /** The host end: where the server must listen (HTTP and WebRTC) for the school to reach it. */
  hostIp: string;
  /**
   * Writes a script that runs Debian's Chromium inside the namespace (for LESSONCAST_CHROMIUM),
   * treating `origin` — the server's plain-HTTP address, which is not localhost — as a secure
   * context, as the HTTPS origin of a real deployment is (TLS is tested on its own).
   */
  chromium(origin: string): string;
  /** From now on only TCP to hostIp:port leaves the namespace. */
  allowOnly(port: number): Promise<void>;
  /** Lift the firewall (the school's network is fixed). */
  openUp(): Promise<void>;
  close(): Promise<void>;
}

const sh = async (cmd: string, ...args: string[]): Promise<string> => (await run(cmd, args)).stdout;

export async function createFirewalledSchool(dir: string, chromium = '/usr/bin/chromium'): Promise<FirewalledSchool> {
  const id = process.pid % 100_000;
  const ns = `lcow${id}`;
  const hostIf = `lcowh${id}`;
  const schoolIf = `lcows${id}`;
  // A /30 of our own in 10.239.0.0/16, skipping any already on this host.
  const taken = await sh('ip', '-4', '-o', 'addr', 'show');
  let third = (id % 200) + 20;
  while (taken.includes(`10.239.${third}.`)) third = (third + 1) % 250;
  const hostIp = `10.239.${third}.1`;
  const schoolIp = `10.239.${third}.2`;
  const close = async (): Promise<void> => {
    await run('ip', ['link', 'del', hostIf]).catch(() => undefined);
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  await close(); // left over from a killed run with the same pid
  try {
    await sh('ip', 'netns', 'add', ns);
    await sh('ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', schoolIf);
    await sh('ip', 'link', 'set', schoolIf, 'netns', ns);
    await sh('ip', 'addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    await sh('ip', 'link', 'set', hostIf, 'up');
    await sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${schoolIp}/30`, 'dev', schoolIf);
    await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', schoolIf, 'up');
    await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    await close();
    throw new Error(`cannot make the school's network namespace (root and iproute2 needed): ${(err as Error).message}`, { cause: err });
  }
  const nft = (script: string) =>
    new Promise<void>((resolve, reject) => {
      const child = execFile('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], (err) =>
        err ? reject(new Error(`nft: ${err.message}`, { cause: err })) : resolve(),
      );
      child.stdin?.end(script);
    });
  return {
    ns,
    hostIp,
    chromium(origin) {
      const wrapper = path.join(dir, 'chromium-in-school.sh');
      writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${chromium} --unsafely-treat-insecure-origin-as-secure=${origin} "$@"\n`);
      chmodSync(wrapper, 0o755);
      return wrapper;
    },
    allowOnly: (port) =>
      nft(
        [
          `table inet ${TABLE} {`,
          '  chain out {',
          '    type filter hook output priority 0; policy drop;',
          '    oif "lo" accept',
          `    ip daddr ${hostIp} tcp dport ${port} accept`,
          '  }',
          '}',
        ].join('\n'),
      ),
    openUp: () => nft(`delete table inet ${TABLE}`),
    close,
  };
}
