// The structured logger every part of a node writes to: pino in the daemon
// (JSON lines), anything with these methods in the library, nothing in tests.
export interface Logger {
  error(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  info(o: object, msg?: string): void;
  debug(o: object, msg?: string): void;
}

/** Says nothing: the library's default. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
