// What a front end is configured with (the `frontends` section of the
// configuration, docs/configuration.md); src/daemon/config.ts validates it.
export type IdentityMode = 'preamble' | 'proxy-v2' | 'peer-address';

export interface FrontendConfig {
  name: string;
  listen: { address: string; port: number };
  /** Where the client's identity comes from. */
  identity: IdentityMode;
  /** Answer with the endpoint and close, for clients that connect themselves (preamble only). */
  redirect: boolean;
  /** proxy-v2: the TLV type that carries the username (0 = none: empty username). */
  usernameTlv: number;
  /** peer-address / proxy-v2 without a username TLV: the username to use. */
  username: string;
  identityTimeoutMs: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxPreambleOctets: number;
  /** Endpoints tried for one call before giving up (the first plus reroutes). */
  connectAttempts: number;
  /**
   * How a connected call's octets are carried: `kernel` (splice(2) on the
   * native splice pump's thread, no copy through user space) or `node`
   * (through Node's sockets, splice.ts).
   */
  splice: 'kernel' | 'node';
  /** One info line per call when it ends (HAProxy's tcplog); refused calls are logged at warn either way. */
  accessLog: boolean;
}
