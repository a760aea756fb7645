// JSON form of messages in the shared vectors: client keys in their text
// form, buffers in hex. Used by the generator and by the vector tests.
import { formatClientKey, parseClientKey } from '../../src/codec/client-key';
import { type Entry, type Message, MessageType } from '../../src/codec/messages';

export interface EntryJson {
  clientKey: string;
  endpoint: { address: string; port: number; name: string };
  version: number;
  originNode: number;
  ttlSeconds: number;
}
export type MessageJson =
  | { query: { keys: string[]; queryId: number; answerRank: number } }
  | { reply: { queryId: number; entries: EntryJson[] } }
  | { update: { entries: EntryJson[] } }
  | { claim: { claimId: number; proposals: EntryJson[]; handover?: boolean } }
  | { hello: { state: number; intervalMs: number; entries: number; readyForMs?: number } };

const entryToJson = (e: Entry): EntryJson => ({
  clientKey: formatClientKey(e.clientKey),
  endpoint: { ...e.endpoint },
  version: e.version,
  originNode: e.originNode,
  ttlSeconds: e.ttlSeconds,
});
const entryFromJson = (e: EntryJson): Entry => ({ ...e, clientKey: parseClientKey(e.clientKey) });

export function messageToJson(m: Message): MessageJson {
  switch (m.type) {
    case MessageType.Query:
      return { query: { keys: m.query.keys.map(formatClientKey), queryId: m.query.queryId, answerRank: m.query.answerRank } };
    case MessageType.Reply:
      return { reply: { queryId: m.reply.queryId, entries: m.reply.entries.map(entryToJson) } };
    case MessageType.Update:
      return { update: { entries: m.update.entries.map(entryToJson) } };
    case MessageType.Claim:
      return { claim: { claimId: m.claim.claimId, proposals: m.claim.proposals.map(entryToJson), ...(m.claim.handover ? { handover: true } : {}) } };
    case MessageType.Hello:
      return { hello: { ...m.hello } };
  }
}

export function messageFromJson(j: MessageJson): Message {
  if ('query' in j) return { type: MessageType.Query, query: { keys: j.query.keys.map(parseClientKey), queryId: j.query.queryId, answerRank: j.query.answerRank } };
  if ('reply' in j) return { type: MessageType.Reply, reply: { queryId: j.reply.queryId, entries: j.reply.entries.map(entryFromJson) } };
  if ('update' in j) return { type: MessageType.Update, update: { entries: j.update.entries.map(entryFromJson) } };
  if ('claim' in j) return { type: MessageType.Claim, claim: { claimId: j.claim.claimId, proposals: j.claim.proposals.map(entryFromJson), handover: !!j.claim.handover } };
  return { type: MessageType.Hello, hello: { ...j.hello } };
}

/** The native decoder's plain object, in the same JSON form. */
export function nativeToJson(type: number, o: Record<string, unknown>): MessageJson {
  type NKey = { discriminatorClass: number; discriminatorAddress: Buffer; username: Buffer };
  type NEntry = { clientKey: NKey; endpoint: { address: Buffer; port: number; name: Buffer }; version: number; originNode: number; ttlSeconds: number };
  const key = (k: NKey) =>
    formatClientKey({ discriminator: { class: k.discriminatorClass, address: k.discriminatorAddress }, username: k.username.toString('utf8') });
  const entry = (e: NEntry): EntryJson => {
    const a = e.endpoint.address;
    const address = a.length === 4 ? [...a].join('.') : require('ipaddr.js').fromByteArray([...a]).toRFC5952String();
    return {
      clientKey: key(e.clientKey),
      endpoint: { address, port: e.endpoint.port, name: e.endpoint.name.toString('utf8') },
      version: e.version,
      originNode: e.originNode,
      ttlSeconds: e.ttlSeconds,
    };
  };
  switch (type) {
    case MessageType.Query:
      return { query: { keys: (o.keys as NKey[]).map(key), queryId: o.queryId as number, answerRank: o.answerRank as number } };
    case MessageType.Reply:
      return { reply: { queryId: o.queryId as number, entries: (o.entries as NEntry[]).map(entry) } };
    case MessageType.Update:
      return { update: { entries: (o.entries as NEntry[]).map(entry) } };
    case MessageType.Claim:
      return { claim: { claimId: o.claimId as number, proposals: (o.proposals as NEntry[]).map(entry), ...(o.handover ? { handover: true } : {}) } };
    default:
      return { hello: { state: o.state as number, intervalMs: o.intervalMs as number, entries: o.entries as number, readyForMs: o.readyForMs as number } };
  }
}
