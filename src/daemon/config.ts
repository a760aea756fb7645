// Configuration: one YAML file, validated against a JSON schema (ajv); every
// setting has a default embedded here. Errors name the setting and the reason.
// docs/configuration.md describes every setting.
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';

import Ajv, { type ErrorObject } from 'ajv';
import ipaddr from 'ipaddr.js';
import { parseDocument } from 'yaml';

import { validateEndpoint } from '../codec/endpoint';
import { type Keyring, validateKeyring } from '../codec/frame';
import type { FrontendConfig } from '../frontend/frontend-config';
import { radiusSecretProblems } from '../radius/secret-file';
import { MAX_TUNNEL_PASSWORD_OCTETS } from '../radius/tunnel-attributes';
import { RADIUS_CONFIG_SCHEMA, type RadiusConfig, radiusConfigProblems, TUNNEL_CONFIG_SCHEMA, type TunnelConfig } from '../radius/radius-config';
import { POLICY_NAMES, type PolicyName } from '../selection/selection-policy';
// ---- sites (issue 16): the schema block lives with the site layer ----
import { SITES_SCHEMA, type SitesConfig, sitesConfigProblems } from '../sites/sites-config';
// ---- end sites ----
import { MIN_SPIN_MICROS } from '../transport/reply-spin';

export type { FrontendConfig, IdentityMode } from '../frontend/frontend-config';

export interface Config {
  node: { id: number };
  cluster: {
    group: string;
    port: number;
    interface: string;
    localAddress: string;
    unicastPort: number;
    ttl: number;
    loopback: boolean;
    maxSkewMs: number;
    keyFile: string;
    peers: { address: string; port: number }[];
    busyPollMicros: number;
    replySocket: boolean;
    /** After a QUERY, read the reply socket this long at most before sleeping (adaptive; 0: off). */
    replySpinMicros: number;
    /** How often this node multicasts a HELLO (liveness and state). */
    helloIntervalMs: number;
    /** A node not heard from for this long is counted out (not alive, not an arbiter). */
    peerTimeoutMs: number;
    /** SO_RCVBUF of the sockets: room for bursts while the I/O thread is busy. */
    receiveBufferBytes: number;
  };
  directory: {
    capacity: number;
    endpointCapacity: number;
    entryTtlSeconds: number;
    maxTtlSeconds: number;
    queueCapacity: number;
    /** Frames handed to JS per callback; timers and I/O run between batches. */
    deliverBatch: number;
    /** Where the table is saved and loaded from; '' keeps it in memory only. */
    snapshotFile: string;
    snapshotIntervalSeconds: number;
    /** How long a withdraw marker keeps an older entry from coming back; 0: maxTtlSeconds. */
    withdrawTtlSeconds: number;
  };
  /** Bulk sync at start (docs/protocol.md, "Bulk sync"). */
  sync: {
    enabled: boolean;
    /** Hold call requests until the sync is done or timed out. */
    holdCalls: boolean;
    /** Give up and report ready after this long. */
    timeoutMs: number;
    /** Chunks a peer sends per request. */
    windowChunks: number;
    /** Ask again after this long without a chunk. */
    retryMs: number;
    /** Asks without an answer before giving up (at start: before deciding this node is alone). */
    retries: number;
  };
  /** Periodic digest comparison and repair (docs/protocol.md, "DIGEST (detecting split bundles)"). */
  antiEntropy: { enabled: boolean; intervalMs: number; buckets: number };
  query: {
    count: number;
    intervalMs: number;
    timeoutMs: number;
    /** Times each UPDATE is multicast, intervalMs apart. */
    updateRepeats: number;
  };
  /**
   * Agreement of concurrent first calls through the client's arbiter (docs/protocol.md, "CLAIM").
   * arbiterDelayMs: a node counts among the arbiters, and settles CLAIMs, once it has been ready this long (as its HELLOs say).
   * handoverMs: for this long after a node became an arbiter, proposals for the clients it took over go to their earlier arbiter first.
   */
  agreement: { enabled: boolean; retryMs: number; timeoutMs: number; arbiterDelayMs: number; handoverMs: number };
  /** The live links of each client: live-split detection and repair. */
  links: { splitRepair: 'close' | 'report'; checkIntervalMs: number };
  selection: {
    policy: PolicyName;
    failureHoldDownMs: number;
    /** Active TCP checks of the endpoints (off by default). */
    healthCheck: { enabled: boolean; intervalMs: number; timeoutMs: number; rise: number; fall: number };
  };
  endpoints: { name: string; address: string; port: number; weight: number; tunnel?: TunnelConfig }[];
  frontends: FrontendConfig[];
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  /** Unix control sockets (mode 0660): admin, and optionally read-only. '' is off. */
  control: { socket: string; readOnlySocket: string; readOnlyGroup: string };
  /** The HTTP listener for /metrics, /healthz and /readyz. */
  management: { enabled: boolean; address: string; port: number };
  /** The HTTP decision API FreeRADIUS calls (docs/radius.md). */
  radius: RadiusConfig;
  // ---- sites (issue 16): joining other sites through Redis; src/sites/sites-config.ts ----
  sites: SitesConfig;
  // ---- end sites ----
}

type DeepPartial<T> = T extends (infer U)[] ? DeepPartial<U>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
/** A configuration as a user writes it: any setting may be left out (the schema says which are required). */
export type ConfigInput = DeepPartial<Config>;

const port = { type: 'integer', minimum: 1, maximum: 65535 };
const ms = (dflt: number, max = 3_600_000) => ({ type: 'integer', minimum: 1, maximum: max, default: dflt });
const str = (dflt: string) => ({ type: 'string', default: dflt });

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    // no default: a cloned appliance must not silently become node 1 (checked in resolveConfig)
    node: {
      type: 'object', additionalProperties: false, required: ['id'], restart: true,
      properties: { id: { type: 'integer', minimum: 1, maximum: 4294967295 } },
    },
    cluster: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        group: { ...str('239.255.77.77'), restart: true },
        port: { ...port, default: 7447, restart: true },
        interface: { ...str('127.0.0.1'), restart: true },
        localAddress: { ...str(''), restart: true },
        unicastPort: { type: 'integer', minimum: 0, maximum: 65535, default: 0, restart: true },
        ttl: { type: 'integer', minimum: 1, maximum: 255, default: 1, restart: true },
        loopback: { type: 'boolean', default: true, restart: true },
        maxSkewMs: { ...ms(30_000, 86_400_000), restart: true },
        keyFile: str(''),
        peers: {
          type: 'array', default: [], restart: true,
          items: { type: 'object', additionalProperties: false, required: ['address', 'port'], properties: { address: { type: 'string' }, port } },
        },
        busyPollMicros: { type: 'integer', minimum: 0, maximum: 10_000, default: 0, restart: true },
        replySocket: { type: 'boolean', default: true, restart: true },
        replySpinMicros: { type: 'integer', minimum: 0, maximum: 1000, default: 0, restart: true },
        helloIntervalMs: { ...ms(500, 60_000), restart: true },
        peerTimeoutMs: { ...ms(3000, 600_000), restart: true },
        receiveBufferBytes: { type: 'integer', minimum: 65_536, maximum: 1_073_741_824, default: 4_194_304, restart: true },
      },
    },
    directory: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        capacity: { type: 'integer', minimum: 1, maximum: 268_435_456, default: 1_000_000, restart: true },
        endpointCapacity: { type: 'integer', minimum: 1, maximum: 1_048_576, default: 4096, restart: true },
        entryTtlSeconds: { type: 'integer', minimum: 1, maximum: 31_536_000, default: 3600, restart: true },
        maxTtlSeconds: { type: 'integer', minimum: 1, maximum: 31_536_000, default: 86_400, restart: true },
        queueCapacity: { type: 'integer', minimum: 2, maximum: 1_048_576, default: 4096, restart: true },
        deliverBatch: { type: 'integer', minimum: 1, maximum: 65_536, default: 256, restart: true },
        snapshotFile: { ...str(''), restart: true },
        snapshotIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86_400, default: 60 },
        withdrawTtlSeconds: { type: 'integer', minimum: 0, maximum: 31_536_000, default: 0, restart: true },
      },
    },
    sync: {
      type: 'object', additionalProperties: false, default: {}, restart: true,
      properties: {
        enabled: { type: 'boolean', default: true },
        holdCalls: { type: 'boolean', default: true },
        timeoutMs: ms(30_000, 3_600_000),
        windowChunks: { type: 'integer', minimum: 1, maximum: 64, default: 16 },
        retryMs: ms(200, 60_000),
        retries: { type: 'integer', minimum: 1, maximum: 100, default: 4 },
      },
    },
    antiEntropy: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        intervalMs: ms(10_000, 3_600_000),
        buckets: { type: 'integer', minimum: 1, maximum: 128, default: 64 },
      },
    },
    query: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        count: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
        intervalMs: ms(15, 60_000),
        timeoutMs: ms(30, 60_000),
        updateRepeats: { type: 'integer', minimum: 1, maximum: 100, default: 2 },
      },
    },
    agreement: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        retryMs: ms(10, 60_000),
        timeoutMs: ms(1000, 600_000),
        arbiterDelayMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 1000, restart: true },
        handoverMs: { type: 'integer', minimum: 0, maximum: 3_600_000, default: 2000, restart: true },
      },
    },
    links: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        splitRepair: { enum: ['close', 'report'], default: 'close' },
        checkIntervalMs: ms(1000, 3_600_000),
      },
    },
    selection: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        policy: { enum: POLICY_NAMES, default: 'rendezvous' },
        failureHoldDownMs: ms(10_000, 86_400_000),
        healthCheck: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            enabled: { type: 'boolean', default: false },
            intervalMs: ms(2000, 3_600_000),
            timeoutMs: ms(1000, 60_000),
            rise: { type: 'integer', minimum: 1, maximum: 100, default: 2 },
            fall: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
          },
        },
      },
    },
    endpoints: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['address', 'port'],
        properties: { name: str(''), address: { type: 'string' }, port, weight: { type: 'number', minimum: 0, maximum: 1_000_000, default: 1 }, tunnel: TUNNEL_CONFIG_SCHEMA },
      },
    },
    frontends: {
      type: 'array', default: [], restart: true,
      items: {
        type: 'object', additionalProperties: false, required: ['listen'],
        properties: {
          name: str(''),
          listen: {
            type: 'object', additionalProperties: false, required: ['port'],
            properties: { address: str('0.0.0.0'), port: { type: 'integer', minimum: 0, maximum: 65535 } },
          },
          identity: { enum: ['preamble', 'proxy-v2', 'peer-address'], default: 'preamble' },
          redirect: { type: 'boolean', default: false },
          usernameTlv: { type: 'integer', minimum: 0, maximum: 255, default: 0 },
          username: str(''),
          identityTimeoutMs: ms(5000),
          connectTimeoutMs: ms(3000),
          idleTimeoutMs: ms(600_000, 86_400_000),
          maxPreambleOctets: { type: 'integer', minimum: 64, maximum: 65_541, default: 1024 },
          connectAttempts: { type: 'integer', minimum: 1, maximum: 16, default: 2 },
          accessLog: { type: 'boolean', default: true },
          splice: { enum: ['kernel', 'node'], default: 'kernel' },
        },
      },
    },
    log: {
      type: 'object', additionalProperties: false, default: {},
      properties: { level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' } },
    },
    control: {
      type: 'object', additionalProperties: false, default: {}, restart: true,
      properties: { socket: str(''), readOnlySocket: str(''), readOnlyGroup: str('') },
    },
    management: {
      type: 'object', additionalProperties: false, default: {}, restart: true,
      properties: { enabled: { type: 'boolean', default: false }, address: str('127.0.0.1'), port: { type: 'integer', minimum: 0, maximum: 65535, default: 9147 } },
    },
    radius: RADIUS_CONFIG_SCHEMA,
    // ---- sites (issue 16): src/sites/sites-config.ts ----
    sites: SITES_SCHEMA,
    // ---- end sites ----
  },
} as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[], source = 'config') {
    super(`${source}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`}`);
    this.name = 'ConfigError';
  }
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
// `restart: true` marks a setting a running node cannot change (sockets,
// memory, identity): a reload reports it instead of applying it.
ajv.addVocabulary(['restart']);
const validate = ajv.compile(CONFIG_SCHEMA);

/** Dotted paths of the settings marked `restart` in the schema. */
export const RESTART_ONLY_SETTINGS: readonly string[] = (function collect(node: unknown, path: string): string[] {
  const n = node as { restart?: boolean; properties?: Record<string, unknown> };
  if (n.restart) return [path];
  return Object.entries(n.properties ?? {}).flatMap(([k, v]) => collect(v, path ? `${path}.${k}` : k));
})(CONFIG_SCHEMA, '');

function describe(e: ErrorObject): string {
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(top level)';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where === '(top level)' ? '' : where + '.'}${(e.params as { additionalProperty: string }).additionalProperty}: unknown setting`;
    case 'required':
      return `${where === '(top level)' ? '' : where + '.'}${(e.params as { missingProperty: string }).missingProperty}: required`;
    case 'enum':
      return `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    default:
      return `${where}: ${e.message}`;
  }
}

/** Defaults applied, schema and cross-field rules checked; throws ConfigError. */
export function resolveConfig(input: unknown, source = 'config'): Config {
  const { config, problems } = checkConfig(input, source);
  if (problems.length) throw new ConfigError(problems, source);
  return config;
}

/** resolveConfig's work: throws only for schema errors; the cross-field problems are returned, all of them. */
function checkConfig(input: unknown, source: string): { config: Config; problems: string[] } {
  const c = structuredClone(input ?? {}) as Config;
  // --- validation (operations): node.id has no default, said in words an operator can act on
  // (`node:` with nothing under it, or `id:` with no value, is YAML null: missing too)
  const n = typeof c === 'object' && c !== null ? (c as { node?: unknown }).node : undefined;
  const missingId = typeof c === 'object' && c !== null && (n === undefined || n === null || (typeof n === 'object' && ((n as { id?: unknown }).id === undefined || (n as { id?: unknown }).id === null)));
  if (missingId) delete (c as { node?: unknown }).node; // only the one clear message below
  const valid = validate(c);
  const idProblem = `node.id: required, unique in the cluster (1 to 4294967295); there is no default, so that a copied configuration cannot make a second node 1`;
  if (!valid) {
    const schemaProblems = (validate.errors ?? []).filter((e) => !(e.keyword === 'required' && /^(node|id)$/.test((e.params as { missingProperty: string }).missingProperty) && missingId)).map(describe);
    throw new ConfigError(missingId ? [idProblem, ...schemaProblems] : schemaProblems, source);
  }
  const problems: string[] = missingId ? [idProblem] : [];
  // --- end of node.id validation
  const groupFamily = isIP(c.cluster.group);
  if (!groupFamily) problems.push(`cluster.group: "${c.cluster.group}" is not an IP address`);
  // --- validation (operations): the group must be a multicast address
  else if (ipaddr.parse(c.cluster.group).range() !== 'multicast') {
    problems.push(`cluster.group: ${c.cluster.group} is not a multicast address (IPv4 224.0.0.0/4, e.g. 239.255.77.77; IPv6 ff00::/8, e.g. ff15::a:1)`);
  }
  if (groupFamily === 4 && !isIP(c.cluster.interface)) {
    problems.push(`cluster.interface: an IPv4 group needs the interface's IPv4 address, got "${c.cluster.interface}"`);
  }
  if (c.agreement.handoverMs > 0 && c.agreement.handoverMs < c.agreement.timeoutMs) {
    problems.push(`agreement.handoverMs: ${c.agreement.handoverMs} is shorter than agreement.timeoutMs (${c.agreement.timeoutMs}): a proposal sent to a client's old arbiter may still be settled there after the handover ends; 0 turns the handover off`);
  }
  if (c.directory.entryTtlSeconds > c.directory.maxTtlSeconds) problems.push('directory.entryTtlSeconds: must not exceed directory.maxTtlSeconds');
  const spin = c.cluster.replySpinMicros;
  if (spin > 0 && spin < MIN_SPIN_MICROS) problems.push(`cluster.replySpinMicros: ${spin} is below the smallest window worth a spin (${MIN_SPIN_MICROS} us): 0 turns the spin off, ${MIN_SPIN_MICROS} to 1000 set its largest window`);
  c.endpoints.forEach((e, i) => {
    try {
      validateEndpoint(e);
    } catch (err) {
      problems.push(`endpoints.${i}: ${(err as Error).message}`);
    }
  });
  const ids = c.endpoints.map((e) => `${e.address}:${e.port}`);
  ids.forEach((id, i) => ids.indexOf(id) !== i && problems.push(`endpoints.${i}: ${id} is listed twice`));
  c.cluster.peers.forEach((p, i) => !isIP(p.address) && problems.push(`cluster.peers.${i}.address: "${p.address}" is not an IP address`));
  const givenFrontNames = c.frontends.map((f) => f.name); // before defaults: port-0 defaults may repeat
  c.frontends.forEach((f, i) => {
    if (!isIP(f.listen.address)) problems.push(`frontends.${i}.listen.address: "${f.listen.address}" is not an IP address`);
    if (f.redirect && f.identity !== 'preamble') problems.push(`frontends.${i}.redirect: only the preamble identity can answer with a redirect`);
    if (!f.name) f.name = `${f.identity}@${f.listen.address}:${f.listen.port}`;
  });
  // --- validation (operations): endpoint names label metrics and logs, so they must be unique
  // (a defaulted name is the address:port, whose repetition is reported above)
  const names = c.endpoints.map((e) => e.name);
  c.endpoints.forEach((e) => !e.name && (e.name = `${e.address}:${e.port}`));
  names.forEach((n, i) => {
    const first = names.indexOf(n);
    if (n && first !== i) problems.push(`endpoints.${i}.name: "${n}" is already the name of endpoints.${first} (names label the metrics and logs of each endpoint)`);
  });
  givenFrontNames.forEach((n, i) => {
    const first = givenFrontNames.indexOf(n);
    if (n && first !== i) problems.push(`frontends.${i}.name: "${n}" is already the name of frontends.${first} (names label the metrics and logs of each front end)`);
  });
  if (c.management.enabled && !isIP(c.management.address)) problems.push(`management.address: "${c.management.address}" is not an IP address`);
  problems.push(...radiusConfigProblems(c));
  if (c.control.socket && c.control.socket === c.control.readOnlySocket) problems.push('control.readOnlySocket: must differ from control.socket');
  for (const k of ['socket', 'readOnlySocket'] as const) {
    const p = c.control[k];
    if (p && (!p.startsWith('/') || Buffer.byteLength(p) > 107)) problems.push(`control.${k}: an absolute path of at most 107 octets`);
  }
  // ---- sites (issue 16) ----
  problems.push(...sitesConfigProblems(c.sites));
  // ---- end sites ----
  return { config: c, problems };
}

/** Reads and resolves a YAML (or JSON) configuration file. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read: ${(e as Error).message}`], path);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(doc.errors.map((e) => e.message.split('\n')[0]), path);
  const { config: c, problems } = checkConfig(doc.toJS(), path);
  // --- validation (operations): what a node started from a file needs beyond the library's rules
  if (c.endpoints.length === 0) problems.push('endpoints: at least one endpoint is needed to run a node');
  if (!c.cluster.keyFile) problems.push('cluster.keyFile: required (a node never runs unauthenticated)');
  c.frontends.forEach((f, i) => {
    if (f.listen.port === 0) problems.push(`frontends.${i}.listen.port: 0 would listen on a random port no client can know; give the port calls arrive on (e.g. 1723)`);
  });
  if (c.management.enabled && c.management.port === 0) problems.push('management.port: 0 would listen on a random port no scraper can know; give a port (default 9147)');
  // --- end of operations validation
  if (problems.length === 0) problems.push(...radiusSecretProblems(c, MAX_TUNNEL_PASSWORD_OCTETS));
  if (problems.length) throw new ConfigError(problems, path);
  return c;
}

/**
 * The cluster keyring from a key file: lines "ID HEX-SECRET [send]", # for
 * comments. The file must not be readable or writable by group or others.
 */
export function loadKeyFile(path: string): Keyring {
  const keys: { id: number; secret: Buffer }[] = [];
  let sendKeyId: number | undefined;
  const problems: string[] = [];
  readSecretFile(path, 'key file')
    .toString('utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) return;
      const m = /^(\d+)\s+([0-9a-fA-F]+)(\s+send)?$/.exec(line);
      if (!m || m[2].length % 2) return problems.push(`line ${i + 1}: expected "ID HEX-SECRET [send]"`);
      keys.push({ id: Number(m[1]), secret: Buffer.from(m[2], 'hex') });
      if (m[3]) {
        if (sendKeyId !== undefined) problems.push(`line ${i + 1}: a second key marked send`);
        sendKeyId = Number(m[1]);
      }
    });
  if (keys.length === 0) problems.push('no key in the file');
  if (sendKeyId === undefined && keys.length === 1) sendKeyId = keys[0].id;
  if (sendKeyId === undefined && keys.length > 1) problems.push('several keys and none marked send');
  if (problems.length) throw new ConfigError(problems, path);
  const ring: Keyring = { keys, sendKeyId: sendKeyId! };
  try {
    validateKeyring(ring);
  } catch (e) {
    throw new ConfigError([(e as Error).message], path);
  }
  return ring;
}

/**
 * A file that holds a secret (the cluster key, the Redis password, a TLS
 * private key): it must not be readable or writable by group or others.
 * Throws ConfigError naming the file and the fix.
 */
export function readSecretFile(path: string, what: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ConfigError([`cannot read the ${what}: ${(e as Error).message}`], path);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError([`the ${what} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`], path);
  }
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError([`cannot read the ${what}: ${(e as Error).message}`], path);
  }
}
