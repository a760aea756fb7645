// Checks a configuration against the host it is to run on: the addresses it
// binds must be this host's, the interface it names must exist. check-config
// runs these (unless --offline) and so does `run` before it opens anything,
// so a node refuses to start with the setting named instead of failing in
// bind() with an errno and an address. Pure over an injected view of the
// host (tests give their own); hostView() reads the real one.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

import ipaddr from 'ipaddr.js';

import type { Config } from './config';

export interface HostView {
  /** Interface name -> its addresses (as os.networkInterfaces() gives them). */
  readonly interfaces: Readonly<Record<string, readonly { address: string; family: string }[]>>;
  /** net.ipv4.ip_nonlocal_bind / net.ipv6.ip_nonlocal_bind: binding an address not (yet) here is allowed (keepalived VIPs). */
  readonly nonlocalBind: { readonly ipv4: boolean; readonly ipv6: boolean };
}

function sysctlOn(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

export function hostView(): HostView {
  const raw = networkInterfaces();
  const interfaces: Record<string, { address: string; family: string }[]> = {};
  for (const [name, addrs] of Object.entries(raw)) interfaces[name] = (addrs ?? []).map((a) => ({ address: a.address, family: a.family }));
  return {
    interfaces,
    nonlocalBind: { ipv4: sysctlOn('/proc/sys/net/ipv4/ip_nonlocal_bind'), ipv6: sysctlOn('/proc/sys/net/ipv6/ip_nonlocal_bind') },
  };
}

export interface HostCheck {
  /** The node cannot run here as configured: setting, then why. */
  readonly problems: string[];
  /** It can, but something is unusual (an address bound non-locally). */
  readonly warnings: string[];
}

const normal = (a: string): string => {
  try {
    return ipaddr.process(a.replace(/%.*$/, '')).toString();
  } catch {
    return a;
  }
};

export function checkHost(c: Config, host: HostView): HostCheck {
  const problems: string[] = [];
  const warnings: string[] = [];
  const local = new Map<string, string>(); // address -> interface
  for (const [name, addrs] of Object.entries(host.interfaces)) for (const a of addrs) local.set(normal(a.address), name);
  const listing = () =>
    Object.entries(host.interfaces)
      .map(([n, as]) => `${n} ${as.map((a) => a.address).join(' ')}`)
      .join('; ');
  const isUnspecified = (a: string) => ipaddr.isValid(a) && ipaddr.parse(a).range() === 'unspecified';
  /** An address this node binds: it must be here, unless the kernel allows non-local binds. */
  const bound = (setting: string, address: string) => {
    if (!ipaddr.isValid(address) || isUnspecified(address) || local.has(normal(address))) return;
    const v6 = ipaddr.parse(address).kind() === 'ipv6';
    if (v6 ? host.nonlocalBind.ipv6 : host.nonlocalBind.ipv4) {
      warnings.push(`${setting}: ${address} is not on this host now; allowed because net.${v6 ? 'ipv6' : 'ipv4'}.ip_nonlocal_bind is 1`);
    } else {
      problems.push(`${setting}: ${address} is not an address of this host (here: ${listing()})`);
    }
  };

  const groupIsV6 = ipaddr.isValid(c.cluster.group) && ipaddr.parse(c.cluster.group).kind() === 'ipv6';
  if (groupIsV6) {
    if (!host.interfaces[c.cluster.interface]) {
      problems.push(`cluster.interface: an IPv6 group needs an interface name of this host; there is no "${c.cluster.interface}" (here: ${Object.keys(host.interfaces).join(', ')})`);
    }
  } else if (ipaddr.isValid(c.cluster.interface) && !local.has(normal(c.cluster.interface))) {
    // the group is joined on this address's interface: it must be here, non-local binds or not
    problems.push(`cluster.interface: ${c.cluster.interface} is not an address of this host, so the group cannot be joined on it (here: ${listing()})`);
  }
  if (c.cluster.localAddress) bound('cluster.localAddress', c.cluster.localAddress);
  c.frontends.forEach((f, i) => bound(`frontends.${i}.listen.address`, f.listen.address));
  if (c.management.enabled) bound('management.address', c.management.address);
  return { problems, warnings };
}

/**
 * A start-up error from the kernel (bind, listen, join), with the setting
 * that made the node do it, so the operator knows what to change.
 */
export function explainStartError(e: Error & { code?: string; address?: string; port?: number }, c: Config): string {
  const why: Record<string, string> = {
    EADDRNOTAVAIL: 'the address is not on this host',
    EADDRINUSE: 'another process is listening there',
    EACCES: 'permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)',
    ENODEV: 'no such interface',
  };
  const code = e.code ?? /\b(E[A-Z]{3,})\b/.exec(e.message)?.[1];
  const reason = code && why[code] ? ` (${why[code]})` : '';
  // Node's net errors carry address and port; the addon's carry "address:port" in address and the message
  let address = e.address !== undefined && ipaddr.isValid(e.address) ? e.address : undefined;
  let port = e.port;
  if (address === undefined) {
    for (const text of [e.address ?? '', e.message]) {
      const m = /(?:^|[\s,])\[?([0-9a-fA-F:.]+?)\]?:(\d+)\b/.exec(text);
      if (m && ipaddr.isValid(m[1])) {
        [address, port] = [m[1], Number(m[2])];
        break;
      }
    }
  }
  const same = (a?: string) => a !== undefined && address !== undefined && normal(a) === normal(address);
  let setting: string | undefined;
  c.frontends.forEach((f, i) => {
    if (!setting && same(f.listen.address) && (port === undefined || port === f.listen.port)) setting = `frontends.${i}.listen (${f.name})`;
  });
  if (!setting && c.management.enabled && same(c.management.address) && (port === undefined || port === c.management.port)) setting = 'management.address/port';
  // the unicast socket on a port of its own: a port in use (another node on this host) is that setting's to change
  if (!setting && (same(c.cluster.localAddress) || same(c.cluster.interface)) && code === 'EADDRINUSE' && c.cluster.unicastPort !== 0 && port === c.cluster.unicastPort) setting = 'cluster.unicastPort';
  if (!setting && (same(c.cluster.localAddress) || same(c.cluster.interface))) setting = c.cluster.localAddress ? 'cluster.localAddress' : 'cluster.interface';
  if (!setting && same(c.cluster.group)) setting = 'cluster.group';
  if (!setting && /control socket/.test(e.message)) setting = e.message.includes(c.control.readOnlySocket || '\0') ? 'control.readOnlySocket' : 'control.socket';
  return `${setting ? `${setting}: ` : ''}${e.message}${reason}`;
}
