// Hosts in network namespaces that the test creates and always removes:
// one "switch" namespace with a bridge, and one namespace per host joined to
// it by a veth pair. Traffic stays inside these namespaces.
import { execFileSync } from 'node:child_process';

import { haveCommand, isRoot } from './require';

export interface Host {
  readonly ns: string;
  /** The host's interface, inside its namespace. */
  readonly ifname: string;
  readonly ipv4: string;
  readonly ipv6: string;
}

const run = (args: string[]): string => execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export function netnsUnavailable(): string | undefined {
  if (!isRoot()) return 'network namespaces need root';
  if (!haveCommand('ip')) return 'iproute2 (ip) is not installed';
  return undefined;
}

export class Lan {
  readonly hosts: Host[] = [];
  private readonly sw: string;
  private readonly namespaces: string[] = [];

  constructor(count: number, private readonly tag = `afd${process.pid % 100000}${Math.floor(Math.random() * 1000)}`) {
    this.sw = `${tag}sw`;
    try {
      this.addNs(this.sw);
      run(['ip', '-n', this.sw, 'link', 'add', 'br0', 'type', 'bridge']);
      // deterministic multicast: flood instead of IGMP/MLD snooping
      run(['ip', 'netns', 'exec', this.sw, 'sh', '-c', 'echo 0 > /sys/class/net/br0/bridge/multicast_snooping']);
      run(['ip', '-n', this.sw, 'link', 'set', 'br0', 'up']);
      for (let i = 0; i < count; i++) {
        const ns = `${tag}h${i}`;
        this.addNs(ns);
        const ifname = `eth${i}`;
        run(['ip', 'link', 'add', ifname, 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', this.sw]);
        run(['ip', '-n', this.sw, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
        const ipv4 = `10.77.0.${i + 1}`;
        const ipv6 = `fd77::${i + 1}`;
        run(['ip', '-n', ns, 'addr', 'add', `${ipv4}/24`, 'dev', ifname]);
        run(['ip', '-n', ns, 'addr', 'add', `${ipv6}/64`, 'dev', ifname, 'nodad']);
        run(['ip', '-n', ns, 'link', 'set', ifname, 'up']);
        run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        this.hosts.push({ ns, ifname, ipv4, ipv6 });
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private addNs(ns: string): void {
    run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
  }

  /** Prefix to run a command inside host i's namespace. */
  exec(i: number): string[] {
    return ['ip', 'netns', 'exec', this.hosts[i].ns];
  }

  destroy(): void {
    for (const ns of this.namespaces.reverse()) {
      try {
        run(['ip', 'netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
    this.namespaces.length = 0;
  }
}
