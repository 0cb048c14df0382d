/**
 * A small internet on this machine, made of network namespaces (`ip netns`), veth pairs, one
 * bridge, and nftables for NAT and firewalls. Built and torn down by the test (or bench) itself;
 * nothing is added to the machine's own namespace: every veth is created inside a namespace of
 * ours, so deleting the namespaces removes every interface, address, route and rule.
 *
 *                         core (bridge "wan", 198.18.0.0/24: the internet between sites)
 *       ┌──────────────┬─────────┼──────────┬──────────┬──────────┐
 *   datacentre       steam    router-a   router-b   router-c   router-d     (each "wan0")
 *   .10 lessoncast   .20      .101       .102       .103       .104
 *   .11 coturn                NAT+open   NAT,no UDP NAT,443    NAT,https only
 *                               │          │          │          │          ("lan0", 10.77.N.1)
 *                            school-a   school-b   school-c   school-d      ("eth0", 10.77.N.2)
 *
 * Addresses are in 198.18.0.0/15 (RFC 2544 benchmarking: never routed on the internet) and 10.77.x.y
 * inside the namespaces only; the machine's own interfaces and routes are never touched. The WAN
 * is one flat /24, so no site needs a default route except the schools (to their router). Each
 * router masquerades its school behind its WAN address and filters what the school may open:
 *   open        anything;
 *   noUdp       TCP only (every UDP packet dropped, as on a Wi-Fi that blocks UDP);
 *   tcp443      TCP 443 to the data centre's two addresses only;
 *   httpsOnly   TCP 443 to lessoncast's address only (no TURN, no media ports).
 * Replies come back through conntrack (`ct state established,related`); nothing unsolicited enters.
 *
 * A school's link can be made narrow and lossy (`shapeDownlink`): its router's `lan0` (what reaches
 * the school) gets a token bucket (`tc tbf`: rate and a short queue) and nftables drops a random share
 * of the UDP it forwards there (`numgen random mod 100 < N drop`). This kernel has no `netem`, so no
 * delay or jitter is added.
 *
 * Namespaces are named `<prefix>-<site>` with prefix `lcr<pid>` (pid of the process that built
 * them), so parallel runs never collide and the leftovers of a crashed run are recognised by a pid
 * that no longer lives (`removeStaleTopologies`).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const WAN_PREFIX = '198.18.0';
export const ADDR = {
  lessoncast: `${WAN_PREFIX}.10`,
  coturn: `${WAN_PREFIX}.11`,
  steam: `${WAN_PREFIX}.20`,
} as const;

export type Firewall = 'open' | 'noUdp' | 'tcp443' | 'httpsOnly';
export const SCHOOLS = [
  { site: 'school-a', firewall: 'open' },
  { site: 'school-b', firewall: 'noUdp' },
  { site: 'school-c', firewall: 'tcp443' },
  { site: 'school-d', firewall: 'httpsOnly' },
] as const satisfies ReadonlyArray<{ site: string; firewall: Firewall }>;
export type SchoolSite = (typeof SCHOOLS)[number]['site'];
export type Site = 'core' | 'datacentre' | 'steam' | SchoolSite | `router-${'a' | 'b' | 'c' | 'd'}`;

const PREFIX_RE = /^lcr(\d+)-/;

function sh(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** The namespaces that exist now (names only). */
export function listNamespaces(): string[] {
  return sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Whether a process with this pid exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes the namespaces left by runs whose process is gone; returns their names. */
export function removeStaleTopologies(): string[] {
  const stale = listNamespaces().filter((ns) => {
    const m = PREFIX_RE.exec(ns);
    return m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]));
  });
  for (const ns of stale) killNamespaceProcesses(ns);
  for (const ns of stale) sh('ip', ['netns', 'del', ns]);
  return stale;
}

/** Kills what still runs inside a namespace (a crashed run's browsers, coturn, lessoncast). */
function killNamespaceProcesses(ns: string): void {
  const pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

/**
 * Whether this machine lets us build the topology: root, `ip netns`, `nft`. Creates and deletes
 * one probe namespace with a rule in it. Returns the reason when it cannot.
 */
export function namespaceSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root: network namespaces need root (CI runs as root)' };
  const probe = `lcr${process.pid}-probe`;
  try {
    sh('ip', ['netns', 'add', probe]);
    sh(
      'ip',
      ['netns', 'exec', probe, 'nft', '-f', '-'],
      'table ip probe {\n  chain post {\n    type nat hook postrouting priority srcnat;\n    masquerade\n  }\n}\n',
    );
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `cannot make a namespace with nftables rules here: ${(err as Error).message}` };
  } finally {
    try {
      sh('ip', ['netns', 'del', probe]);
    } catch {
      /* was never made */
    }
  }
}

function routerRules(firewall: Firewall): string {
  const allow: Record<Firewall, string> = {
    open: 'iifname "lan0" oifname "wan0" accept',
    noUdp: 'iifname "lan0" oifname "wan0" meta l4proto tcp accept',
    tcp443: `iifname "lan0" oifname "wan0" ip daddr { ${ADDR.lessoncast}, ${ADDR.coturn} } tcp dport 443 accept`,
    httpsOnly: `iifname "lan0" oifname "wan0" ip daddr ${ADDR.lessoncast} tcp dport 443 accept`,
  };
  return `
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
}
table inet school_firewall {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ${allow[firewall]}
  }
}
`;
}

/** What a school's downlink carries: a rate (kbit/s; undefined = the veth's own) and random UDP loss (%). */
export interface LinkShape {
  rateKbit?: number;
  lossPct?: number;
}

/** tbf for `rateKbit`: a bucket of 20 ms at that rate (at least two full packets) and a queue of at most 150 ms. */
export function tbfArgs(dev: string, rateKbit: number): string[] {
  const burstBytes = Math.max(3000, Math.round((rateKbit * 1000) / 8 / 50));
  return ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', String(burstBytes), 'latency', '150ms'];
}

/** nftables rules for random loss of the UDP forwarded out of `dev` (replacing the previous ones; 0 % = none). */
export function lossRules(dev: string, lossPct: number): string {
  const table = 'table inet link_shape';
  // Declaring the table first makes the delete safe when it does not exist yet.
  const reset = `${table} {}\ndelete ${table}\n`;
  if (lossPct <= 0) return reset;
  return `${reset}${table} {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    oifname "${dev}" meta l4proto udp numgen random mod 100 < ${Math.round(lossPct)} drop
  }
}
`;
}

export interface Topology {
  prefix: string;
  /** Full namespace name of a site. */
  ns(site: Site): string;
  /** Runs a command inside a site's namespace and returns its stdout. */
  exec(site: Site, cmd: string, args: string[], input?: string): string;
  /** Starts a long-running command inside a site's namespace. */
  spawn(site: Site, cmd: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** An executable that runs `/usr/bin/chromium "$@"` (or `binary`) inside the site's namespace, for playwright's executablePath. */
  wrapper(site: Site, binary: string, dir: string): string;
  /** The school's address on its own LAN, and its router's on the WAN (where its NAT maps it). */
  schoolAddress(site: SchoolSite): { lan: string; wan: string };
  /** Shapes what reaches a school from the WAN (see the top of this file); an empty shape lifts every limit. */
  shapeDownlink(site: SchoolSite, shape: LinkShape): void;
  /** Deletes every namespace of this topology (killing what still runs in them). Idempotent. */
  destroy(): void;
}

/**
 * A detached watcher that removes the namespaces `<prefix>-*` (and what runs in them) and `folder`
 * once this process is gone without having done it: a test runner's timeout kills the test
 * process outright, with no teardown and no 'exit' event. Plain JavaScript, run by this node.
 */
const REAPER = `
const { execFileSync } = require('node:child_process');
const [pid, prefix, folder] = process.argv.slice(1);
const alive = () => { try { process.kill(Number(pid), 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(() => {
  if (alive()) return;
  clearInterval(timer);
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\\n')
    .map((l) => l.split(' ')[0]).filter((n) => n.startsWith(prefix + '-'));
  for (const n of names) {
    try {
      for (const p of execFileSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).split('\\n').filter(Boolean)) {
        try { process.kill(Number(p), 'SIGKILL'); } catch {}
      }
      execFileSync('ip', ['netns', 'del', n]);
    } catch {}
  }
  if (folder) require('node:fs').rmSync(folder, { recursive: true, force: true });
}, 1000);
`;

/** Namespaces of this process made one by one, with the reaper that removes them should it die first. */
function namespaceKit(folder: string) {
  const prefix = `lcr${process.pid}`;
  const ns = (site: string): string => `${prefix}-${site}`;
  const made: string[] = [];
  const reaper = spawn(process.execPath, ['-e', REAPER, String(process.pid), prefix, folder], { detached: true, stdio: 'ignore' });
  reaper.unref();
  const inNs = (site: string, ...args: string[]): string => sh('ip', ['-n', ns(site), ...args]);
  return {
    prefix,
    ns,
    inNs,
    exec: (site: string, cmd: string, args: string[], input?: string) => sh('ip', ['netns', 'exec', ns(site), cmd, ...args], input),
    spawn: (site: string, cmd: string, args: string[], options: SpawnOptions = {}) =>
      spawn('ip', ['netns', 'exec', ns(site), cmd, ...args], options),
    add(site: string): void {
      sh('ip', ['netns', 'add', ns(site)]);
      made.push(ns(site));
      inNs(site, 'link', 'set', 'lo', 'up');
    },
    /** A veth pair: `a` inside site `x`, `b` inside site `y`. */
    veth(x: string, a: string, y: string, b: string): void {
      inNs(x, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', ns(y));
      inNs(x, 'link', 'set', a, 'up');
      inNs(y, 'link', 'set', b, 'up');
    },
    destroy(): void {
      for (const name of made.reverse()) {
        try {
          killNamespaceProcesses(name);
          sh('ip', ['netns', 'del', name]);
        } catch {
          /* already gone */
        }
      }
      made.length = 0;
      reaper.kill();
    },
  };
}

/**
 * Builds the topology drawn at the top of this file. Fails (after removing what it made) if a step
 * fails. `folder`, if given, is removed with the namespaces should this process die first.
 */
export function buildTopology(folder = ''): Topology {
  const kit = namespaceKit(folder);
  const { ns, inNs, add, veth } = kit;
  const topo: Topology = {
    prefix: kit.prefix,
    ns,
    exec: kit.exec,
    spawn: kit.spawn,
    wrapper: (site, binary, dir) => {
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `chromium-${site}.sh`);
      // `ip netns exec` keeps the file descriptors (playwright talks to the browser over fds 3 and 4)
      // and the environment (HOME, whose NSS database trusts the test CA).
      writeFileSync(file, `#!/bin/sh\nexec ip netns exec '${ns(site)}' '${binary}' "$@"\n`);
      chmodSync(file, 0o755);
      return file;
    },
    schoolAddress: (site) => {
      const i = SCHOOLS.findIndex((s) => s.site === site) + 1;
      return { lan: `10.77.${i}.2`, wan: `${WAN_PREFIX}.${100 + i}` };
    },
    shapeDownlink: (site, shape) => {
      const router: Site = `router-${site.slice(-1) as 'a' | 'b' | 'c' | 'd'}`;
      if (shape.rateKbit) sh('ip', ['netns', 'exec', ns(router), 'tc', ...tbfArgs('lan0', shape.rateKbit)]);
      else sh('ip', ['netns', 'exec', ns(router), 'tc', 'qdisc', 'replace', 'dev', 'lan0', 'root', 'pfifo_fast']);
      topo.exec(router, 'nft', ['-f', '-'], lossRules('lan0', shape.lossPct ?? 0));
    },
    destroy: kit.destroy,
  };
  try {
    add('core');
    inNs('core', 'link', 'add', 'wan', 'type', 'bridge');
    inNs('core', 'link', 'set', 'wan', 'up');
    /** A site on the WAN: its "wan0" plugged into the core bridge by a port named after it. */
    const onWan = (site: Site, port: string, ...addresses: string[]): void => {
      add(site);
      veth('core', port, site, 'wan0');
      inNs('core', 'link', 'set', port, 'master', 'wan');
      for (const a of addresses) inNs(site, 'addr', 'add', `${a}/24`, 'dev', 'wan0');
    };
    onWan('datacentre', 'p-dc', ADDR.lessoncast, ADDR.coturn);
    onWan('steam', 'p-steam', ADDR.steam);
    for (const { site, firewall } of SCHOOLS) {
      const letter = site.slice(-1) as 'a' | 'b' | 'c' | 'd';
      const router: Site = `router-${letter}`;
      const { lan, wan } = topo.schoolAddress(site);
      const gateway = lan.replace(/\.2$/, '.1');
      onWan(router, `p-r${letter}`, wan);
      add(site);
      veth(router, 'lan0', site, 'eth0');
      inNs(router, 'addr', 'add', `${gateway}/24`, 'dev', 'lan0');
      inNs(site, 'addr', 'add', `${lan}/24`, 'dev', 'eth0');
      inNs(site, 'route', 'add', 'default', 'via', gateway);
      topo.exec(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      topo.exec(router, 'nft', ['-f', '-'], routerRules(firewall));
    }
    return topo;
  } catch (err) {
    topo.destroy();
    throw err;
  }
}

/**
 * A data centre's rack for a cluster (issue 17): `nodes` namespaces `node-1`… on one bridge,
 * 198.19.0.0/24 (inside the RFC 2544 range), node i at 198.19.0.(10+i). Unlike the school
 * topology, this process's own namespace is plugged into the bridge too, at 198.19.0.1, by one
 * veth made inside our `dc` namespace: the test's Redis listens there, and its WebRTC clients and
 * browser reach the nodes from there. Deleting `dc` deletes that veth with its address and route.
 */
export const RACK_PREFIX = '198.19.0';
export interface Rack {
  prefix: string;
  /** This process's address on the rack. */
  host: string;
  /** Node i's (1-based) namespace and address. */
  node(i: number): { ns: string; address: string };
  /** Starts a long-running command inside node i's namespace (its pid is the command's own). */
  spawn(i: number, cmd: string, args: string[], options?: SpawnOptions): ChildProcess;
  destroy(): void;
}

export function buildRack(nodes: number, folder = ''): Rack {
  const kit = namespaceKit(folder);
  const hostPort = `lcn${process.pid}`.slice(0, 15);
  const rack: Rack = {
    prefix: kit.prefix,
    host: `${RACK_PREFIX}.1`,
    node: (i) => ({ ns: kit.ns(`node-${i}`), address: `${RACK_PREFIX}.${10 + i}` }),
    spawn: (i, cmd, args, options) => kit.spawn(`node-${i}`, cmd, args, options),
    destroy: () => {
      // Gone now rather than when the kernel gets round to the namespace: a next rack reuses the address.
      try {
        sh('ip', ['link', 'del', hostPort]);
      } catch {
        /* never made, or gone */
      }
      kit.destroy();
    },
  };
  try {
    kit.add('dc');
    kit.inNs('dc', 'link', 'add', 'rack', 'type', 'bridge');
    kit.inNs('dc', 'link', 'set', 'rack', 'up');
    kit.inNs('dc', 'link', 'add', 'p-host', 'type', 'veth', 'peer', 'name', hostPort, 'netns', String(process.pid));
    kit.inNs('dc', 'link', 'set', 'p-host', 'master', 'rack');
    kit.inNs('dc', 'link', 'set', 'p-host', 'up');
    sh('ip', ['addr', 'add', `${rack.host}/24`, 'dev', hostPort]);
    sh('ip', ['link', 'set', hostPort, 'up']);
    for (let i = 1; i <= nodes; i++) {
      kit.add(`node-${i}`);
      kit.veth('dc', `p-n${i}`, `node-${i}`, 'eth0');
      kit.inNs('dc', 'link', 'set', `p-n${i}`, 'master', 'rack');
      kit.inNs(`node-${i}`, 'addr', 'add', `${rack.node(i).address}/24`, 'dev', 'eth0');
    }
    return rack;
  } catch (err) {
    rack.destroy();
    throw err;
  }
}

/** The namespaces of this process's topology that still exist (none after destroy). */
export function ownNamespaces(): string[] {
  return listNamespaces().filter((n) => n.startsWith(`lcr${process.pid}-`));
}
