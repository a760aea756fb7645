// The operator's side of a node: the control sockets (admin and read-only),
// the management listener (/metrics, /healthz, /readyz), the RADIUS API
// FreeRADIUS calls (docs/radius.md) and the service manager's notifications
// (READY, RELOADING, STOPPING, WATCHDOG).
import { ControlServer } from '../control/server';
import { type RadiusHost, RadiusService } from '../radius/radius-service';
import type { Logger } from '../util/logger';
import type { Config } from './config';
import { ManagementServer } from './management';
import type { NodeMetrics } from './metrics';
import type { NodeAdmin } from './node-view';
import type { ServiceNotifier } from './service-notifier';

export class OperatorSide {
  private readonly controls: ControlServer[] = [];
  private management?: ManagementServer;
  private watchdog?: NodeJS.Timeout;
  /** The RADIUS API, when radius.enabled. */
  radius?: RadiusService;

  constructor(private readonly node: NodeAdmin & RadiusHost, private readonly metrics: NodeMetrics, readonly notifier: ServiceNotifier, private readonly log: Logger) {}

  /** Opens the control sockets and the management listener the configuration asks for. */
  async open(c: Config): Promise<void> {
    for (const [path, level, group] of [[c.control.socket, 'admin', ''], [c.control.readOnlySocket, 'read-only', c.control.readOnlyGroup]] as const) {
      if (!path) continue;
      const s = new ControlServer(this.node, level, this.log);
      await s.listen(path, group);
      this.controls.push(s);
    }
    if (c.management.enabled) {
      this.management = new ManagementServer(this.node, this.metrics);
      this.log.info(await this.management.listen(c.management.port, c.management.address), 'management listening (/metrics, /healthz, /readyz)');
    }
    if (c.radius.enabled) this.radius = await RadiusService.start(this.node, this.log);
    // fed from the JS thread: a stuck event loop (which would stop calls being routed) is what it must catch
    const wd = this.notifier.watchdogIntervalMs();
    if (wd) {
      this.watchdog = setInterval(() => this.notifier.notify('WATCHDOG=1'), wd);
      this.watchdog.unref();
    }
  }

  managementAddress(): { address: string; port: number } | undefined {
    return this.management?.address();
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    await Promise.all(this.controls.splice(0).map((s) => s.close()));
    await this.management?.close();
    await this.radius?.close();
  }
}
