// Service-manager notifications (systemd Type=notify): READY=1 once the bulk
// sync is done, RELOADING=1 / READY=1 around a reload, STOPPING=1 at
// shutdown, WATCHDOG=1 at half of WatchdogSec. The datagrams are sent by the
// addon (native/service_notify.cc); without $NOTIFY_SOCKET nothing is sent.
import { native } from '../native';

export interface ServiceNotifier {
  notify(...assignments: string[]): void;
  /** How often to send WATCHDOG=1 (half of $WATCHDOG_USEC), or 0 if no watchdog. */
  watchdogIntervalMs(): number;
}

export const silentNotifier: ServiceNotifier = { notify() {}, watchdogIntervalMs: () => 0 };

/** A notifier for $NOTIFY_SOCKET (and $WATCHDOG_USEC / $WATCHDOG_PID) of env. */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, onError: (e: Error) => void = () => {}): ServiceNotifier {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return silentNotifier;
  const usec = Number(env.WATCHDOG_USEC ?? 0);
  const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
  return {
    notify(...assignments) {
      try {
        native().notifyService(socket, assignments.join('\n'));
      } catch (e) {
        onError(e as Error);
      }
    },
    watchdogIntervalMs: () => (usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : 0),
  };
}
