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
  | { query: { clientKey: string; queryId: number } }
  | { reply: { queryId: number; entry: EntryJson } }
  | { update: { entry: EntryJson } };

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
      return { query: { clientKey: formatClientKey(m.query.clientKey), queryId: m.query.queryId } };
    case MessageType.Reply:
      return { reply: { queryId: m.reply.queryId, entry: entryToJson(m.reply.entry) } };
    case MessageType.Update:
      return { update: { entry: entryToJson(m.update.entry) } };
  }
}

export function messageFromJson(j: MessageJson): Message {
  if ('query' in j) return { type: MessageType.Query, query: { clientKey: parseClientKey(j.query.clientKey), queryId: j.query.queryId } };
  if ('reply' in j) return { type: MessageType.Reply, reply: { queryId: j.reply.queryId, entry: entryFromJson(j.reply.entry) } };
  return { type: MessageType.Update, update: { entry: entryFromJson(j.update.entry) } };
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
  if (type === MessageType.Query) return { query: { clientKey: key(o.clientKey as NKey), queryId: o.queryId as number } };
  if (type === MessageType.Reply) return { reply: { queryId: o.queryId as number, entry: entry(o.entry as NEntry) } };
  return { update: { entry: entry(o.entry as NEntry) } };
}
