/** An input that breaks a protocol rule: a bad client key, endpoint or message. */
export class ProtocolError extends Error {
  constructor(
    /** Machine-readable reason, e.g. `badAddressLength`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}
