// Several sites in network namespaces, for the site layer's end-to-end
// runs (docs/sites.md): each site is its own layer-2 segment (a bridge in a
// namespace of its own, multicast snooping off), so the cluster protocol's
// multicast stays within it; a router namespace joins the sites, the
// endpoints, the clients and Redis by unicast (IP forwarding, no multicast
// routing). Every namespace is created by the test and always removed.
//
//   site 0: h0 h1 ... -- bridge --+
//   site 1: h2 h3 ... -- bridge --+-- router -- endpoints (10.78.10.1)
//                                 |          -- clients   (10.78.11.1)
//                                 +--------- -- redis     (10.78.9.1)
//
// The host list follows NetnsCluster's layout (nodes first, then the
// endpoints' host, then the clients' host), so NetnsCluster runs
// `affinityd run` on it unchanged; redis-server runs in its own namespace.
import { execFileSync } from 'node:child_process';

import type { Host } from './netns';

const run = (args: string[]): string => execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export const REDIS_ADDRESS = '10.78.9.1';

export class SitesNet {
  /** Nodes of site 0, of site 1, ..., then the endpoints' host, then the clients' host. */
  readonly hosts: Host[] = [];
  readonly redis: Host;
  private readonly siteOfHost: number[] = [];
  private readonly namespaces: string[] = [];
  private readonly router: string;

  constructor(readonly sites: number, readonly nodesPerSite: number, private readonly tag = `afs${process.pid % 100000}${Math.floor(Math.random() * 1000)}`) {
    this.router = `${tag}rt`;
    try {
      this.addNs(this.router);
      run(['ip', 'netns', 'exec', this.router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      run(['ip', '-n', this.router, 'link', 'set', 'lo', 'up']);
      for (let s = 0; s < sites; s++) {
        const sw = `${tag}s${s}`;
        this.addNs(sw);
        run(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
        run(['ip', 'netns', 'exec', sw, 'sh', '-c', 'echo 0 > /sys/class/net/br0/bridge/multicast_snooping']);
        run(['ip', '-n', sw, 'link', 'set', 'br0', 'up']);
        // the router's leg in this site
        run(['ip', 'link', 'add', `s${s}`, 'netns', this.router, 'type', 'veth', 'peer', 'name', 'up0', 'netns', sw]);
        run(['ip', '-n', sw, 'link', 'set', 'up0', 'master', 'br0', 'up']);
        run(['ip', '-n', this.router, 'addr', 'add', `10.78.${s}.254/24`, 'dev', `s${s}`]);
        run(['ip', '-n', this.router, 'link', 'set', `s${s}`, 'up']);
        for (let k = 0; k < nodesPerSite; k++) {
          const i = this.hosts.length;
          const ns = `${tag}h${i}`;
          this.addNs(ns);
          run(['ip', 'link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p${k}`, 'netns', sw]);
          run(['ip', '-n', sw, 'link', 'set', `p${k}`, 'master', 'br0', 'up']);
          this.hosts.push(this.stub(ns, `10.78.${s}.${k + 1}`, `10.78.${s}.254`));
          this.siteOfHost.push(s);
        }
      }
      this.hosts.push(this.routed('ep', 10));
      this.siteOfHost.push(-1);
      this.hosts.push(this.routed('cl', 11));
      this.siteOfHost.push(-1);
      this.redis = this.routed('rd', 9);
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private addNs(ns: string): void {
    run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
  }

  /** Addresses and the default route inside a host namespace whose eth0 exists. */
  private stub(ns: string, ipv4: string, gateway: string): Host {
    run(['ip', '-n', ns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0']);
    run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    run(['ip', '-n', ns, 'route', 'add', 'default', 'via', gateway]);
    return { ns, ifname: 'eth0', ipv4, ipv6: '' };
  }

  /** A host on a point-to-point leg of the router: 10.78.NET.1, the router at .254. */
  private routed(name: string, net: number): Host {
    const ns = `${this.tag}${name}`;
    this.addNs(ns);
    run(['ip', 'link', 'add', name, 'netns', this.router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    run(['ip', '-n', this.router, 'addr', 'add', `10.78.${net}.254/24`, 'dev', name]);
    run(['ip', '-n', this.router, 'link', 'set', name, 'up']);
    return this.stub(ns, `10.78.${net}.1`, `10.78.${net}.254`);
  }

  /** The site of host i (-1: the endpoints' or the clients' host). */
  siteOf(i: number): number {
    return this.siteOfHost[i];
  }

  /** Host indexes of the nodes of site s. */
  nodesOf(s: number): number[] {
    return this.siteOfHost.flatMap((x, i) => (x === s ? [i] : []));
  }

  /** Prefix to run a command inside host i's namespace. */
  exec(i: number): string[] {
    return ['ip', 'netns', 'exec', this.hosts[i].ns];
  }

  execRedis(): string[] {
    return ['ip', 'netns', 'exec', this.redis.ns];
  }

  /** Runs nft in the router: cut a site off from Redis (and everything else) with a rule, for failure runs. */
  nftRouter(...args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.router, 'nft', ...args], { encoding: 'utf8' });
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
