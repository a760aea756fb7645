// Active endpoint health checks: a TCP connect to every endpoint on an
// interval; `fall` failures in a row take it out, `rise` successes in a row
// bring it back. A client whose endpoint is out is moved on its next call and
// the move announced (router.route). Off unless configured: a probe opens
// real connections, which is an operator's choice.
import { connect } from 'node:net';

import { type Endpoint, formatEndpoint } from '../codec/endpoint';
import type { EndpointSet } from './endpoint-set';

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export type Probe = (e: Endpoint, timeoutMs: number) => Promise<boolean>;

/** Up if a TCP connection opens within the time-out. */
export const tcpProbe: Probe = (e, timeoutMs) =>
  new Promise((resolve) => {
    const s = connect({ host: e.address, port: e.port });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });

export class HealthChecker {
  private timer?: NodeJS.Timeout;
  private readonly runs = new Map<string, { ok: number; failed: number }>();
  checks = 0;

  constructor(
    private readonly set: EndpointSet,
    private readonly o: HealthCheckOptions,
    private readonly log: { info(o: object, m?: string): void; warn(o: object, m?: string): void },
    private readonly probe: Probe = tcpProbe,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.round(), this.o.intervalMs);
    this.timer.unref();
    void this.round();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async round(): Promise<void> {
    await Promise.all(
      this.set.states.map(async (s) => {
        const ok = await this.probe(s.endpoint, this.o.timeoutMs);
        this.checks++;
        const r = this.runs.get(s.id) ?? { ok: 0, failed: 0 };
        if (ok) {
          r.ok++;
          r.failed = 0;
        } else {
          r.failed++;
          r.ok = 0;
        }
        this.runs.set(s.id, r);
        if (!ok && r.failed === this.o.fall && !s.checkedDown) {
          s.checkedDown = true;
          this.log.warn({ endpoint: formatEndpoint(s.endpoint), failures: r.failed }, 'endpoint down (active check)');
        } else if (ok && r.ok === this.o.rise && s.checkedDown) {
          s.checkedDown = false;
          this.log.info({ endpoint: formatEndpoint(s.endpoint) }, 'endpoint up (active check)');
        }
      }),
    );
  }
}

/** The active checks a node runs as configured now: a reload may turn them on or off or change them. */
export class HealthChecks {
  private checker?: HealthChecker;
  private running = false;
  private done = 0;

  constructor(
    private readonly set: EndpointSet,
    cfg: HealthCheckOptions & { enabled: boolean },
    private readonly log: { info(o: object, m?: string): void; warn(o: object, m?: string): void },
  ) {
    if (cfg.enabled) this.checker = new HealthChecker(set, cfg, log);
  }

  /** Probes made since the node started. */
  get checks(): number {
    return this.done + (this.checker?.checks ?? 0);
  }

  start(): void {
    this.running = true;
    this.checker?.start();
  }

  stop(): void {
    this.running = false;
    this.checker?.stop();
  }

  reconfigure(cfg: HealthCheckOptions & { enabled: boolean }): void {
    this.checker?.stop();
    this.done += this.checker?.checks ?? 0;
    this.checker = cfg.enabled ? new HealthChecker(this.set, cfg, this.log) : undefined;
    // with checks off, no endpoint stays out on the word of a check that no longer runs
    if (!cfg.enabled) for (const st of this.set.states) st.checkedDown = false;
    if (this.running) this.checker?.start();
  }
}
