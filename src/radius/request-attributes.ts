// The RADIUS attributes of one request as FreeRADIUS sends them in a JSON
// body: rlm_rest's `body = 'json'` and rlm_json's `json_encode` ("object"
// mode) both give {"Attribute-Name": {"type": "...", "value": [...]}}; the
// short forms {"Attribute-Name": "value"} and {"Attribute-Name": ["v1",
// "v2"]} are read too, for hand-written requests. docs/radius.md has the
// schema. Pure: no I/O.
//
// FreeRADIUS copies string attributes into the JSON as they came in the
// RADIUS packet, so a body can hold octets that are not UTF-8 (a binary
// vendor string, a user name in Latin-1). Such a body is read octet for
// octet (latin1) and only the attributes affinityd uses are decoded, each
// by its own rule: one odd attribute elsewhere does not spoil the request.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why a request cannot be read; the reasons are counted (docs/radius.md). */
export class BadRadiusRequest extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
    this.name = 'BadRadiusRequest';
  }
}

export interface AttributeValues {
  /** The attribute's type as FreeRADIUS names it (string, octets, ipaddr, integer, date...), if given. */
  readonly type?: string;
  readonly values: readonly (string | number)[];
}

export class RequestAttributes {
  /** By lower-case name, without a tag suffix (`Tunnel-Server-Endpoint:1` is `tunnel-server-endpoint`). */
  private constructor(private readonly byName: ReadonlyMap<string, AttributeValues>, private readonly octetStrings: boolean) {}

  /** Reads a JSON body. Throws BadRadiusRequest('malformedJson'). */
  static parse(body: Buffer): RequestAttributes {
    let octetStrings = false;
    let textBody: string;
    try {
      textBody = strictUtf8.decode(body);
    } catch {
      textBody = body.toString('latin1');
      octetStrings = true;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(textBody);
    } catch (e) {
      throw new BadRadiusRequest('malformedJson', `the body is not JSON: ${(e as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new BadRadiusRequest('malformedJson', 'the body must be a JSON object of attributes');
    }
    const byName = new Map<string, AttributeValues>();
    for (const [rawName, v] of Object.entries(doc)) {
      const name = rawName.replace(/:\d+$/, '').toLowerCase();
      const read = RequestAttributes.values(v);
      if (!read) throw new BadRadiusRequest('malformedJson', `attribute "${rawName.slice(0, 64)}": expected a string, a number, an array of them, or {"type", "value"}`);
      const had = byName.get(name);
      byName.set(name, had ? { type: had.type ?? read.type, values: [...had.values, ...read.values] } : read);
    }
    return new RequestAttributes(byName, octetStrings);
  }

  private static values(v: unknown): AttributeValues | undefined {
    const scalar = (x: unknown): x is string | number => typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x));
    if (scalar(v)) return { values: [v] };
    if (Array.isArray(v)) return v.every(scalar) ? { values: v } : undefined;
    if (typeof v === 'object' && v !== null && 'value' in v) {
      const o = v as { type?: unknown; value: unknown };
      if (o.type !== undefined && typeof o.type !== 'string') return undefined;
      const inner = scalar(o.value) ? [o.value] : Array.isArray(o.value) && o.value.every(scalar) ? (o.value as (string | number)[]) : undefined;
      return inner && { type: o.type as string | undefined, values: inner };
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.byName.has(name.toLowerCase());
  }

  get(name: string): AttributeValues | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** The values' octets: a string's octets as they were in the RADIUS packet; a number in decimal. */
  octets(name: string): Buffer[] | undefined {
    const a = this.get(name);
    return a?.values.map((v) => (typeof v === 'number' ? Buffer.from(String(v)) : Buffer.from(v, this.octetStrings ? 'latin1' : 'utf8')));
  }

  /** The values as text: strings decoded as UTF-8. Throws BadRadiusRequest(reason) if one is not. */
  text(name: string, reason: string): string[] | undefined {
    if (!this.octetStrings) return this.get(name)?.values.map(String);
    return this.octets(name)?.map((b) => {
      try {
        return strictUtf8.decode(b);
      } catch {
        throw new BadRadiusRequest(reason, `${name} is not UTF-8`);
      }
    });
  }

  /** The one value of an attribute as text; undefined if absent; BadRadiusRequest(reason) if repeated or not UTF-8. */
  single(name: string, reason: string): string | undefined {
    const t = this.text(name, reason);
    if (!t || t.length === 0) return undefined;
    if (t.length > 1) throw new BadRadiusRequest(reason, `${name} appears ${t.length} times`);
    return t[0];
  }
}
