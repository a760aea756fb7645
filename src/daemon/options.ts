// What each part of a node is configured with, from the configuration: the
// one place where settings are mapped onto the parts' own options (their
// defaults are the schema's, config.ts).
import type { Keyring } from '../codec/frame';
import type { Lifetimes } from '../directory/lifetimes';
import type { RouterOptions } from '../directory/router';
import type { ResponderOptions } from '../native';
import { type Config, resolveConfig } from './config';

export function lifetimes(c: Config): Lifetimes {
  return {
    entrySeconds: c.directory.entryTtlSeconds,
    withdrawSeconds: c.directory.withdrawTtlSeconds || c.directory.maxTtlSeconds,
    maxSeconds: c.directory.maxTtlSeconds,
  };
}

export function routerOptions(c: Config): RouterOptions {
  return {
    nodeId: c.node.id,
    queryCount: c.query.count,
    queryIntervalMs: c.query.intervalMs,
    queryTimeoutMs: c.query.timeoutMs,
    updateRepeats: c.query.updateRepeats,
    entryTtlSeconds: c.directory.entryTtlSeconds,
    failureHoldDownMs: c.selection.failureHoldDownMs,
    agreement: c.agreement,
  };
}

export function responderOptions(c: Config, bootEpoch: number, keyring: Keyring): ResponderOptions {
  return {
    nodeId: c.node.id,
    bootEpoch,
    group: c.cluster.group,
    port: c.cluster.port,
    interface: c.cluster.interface,
    localAddress: c.cluster.localAddress || undefined,
    unicastPort: c.cluster.unicastPort,
    ttl: c.cluster.ttl,
    loopback: c.cluster.loopback,
    maxSkewMs: c.cluster.maxSkewMs,
    defaultTtlSeconds: c.directory.entryTtlSeconds,
    maxTtlSeconds: c.directory.maxTtlSeconds,
    queueCapacity: c.directory.queueCapacity,
    maxBatch: c.directory.deliverBatch,
    receiveBufferBytes: c.cluster.receiveBufferBytes,
    busyPollMicros: c.cluster.busyPollMicros,
    replySocket: c.cluster.replySocket,
    helloIntervalMs: c.cluster.helloIntervalMs,
    peerTimeoutMs: c.cluster.peerTimeoutMs,
    arbiterDelayMs: c.agreement.arbiterDelayMs,
    // a proposal resent for up to the agreement time-out after the handover ends still finds the chains' answers
    handoverHoldMs: c.agreement.enabled && c.agreement.handoverMs ? c.agreement.handoverMs + c.agreement.timeoutMs : 0,
    keyring,
  };
}

/**
 * Options for a responder outside a node (tools, benchmarks, tests): the
 * schema's defaults, with these settings over them.
 */
export function standaloneResponderOptions(o: { nodeId: number; group: string; port: number; interface: string; keyring: Keyring; bootEpoch?: number } & Partial<ResponderOptions>): ResponderOptions {
  const c = resolveConfig({ node: { id: o.nodeId }, cluster: { group: o.group, port: o.port, interface: o.interface } });
  return { ...responderOptions(c, o.bootEpoch ?? Math.floor(Date.now() / 1000), o.keyring), ...o };
}
