// affinityd as a library: create a node from a configuration, ask where a
// client goes, close it. README.md "Library" shows the use.
export { AffinityNode, createNode, type NodeOptions, type ReloadResult } from './daemon/create-node';
export type { NodeStats } from './daemon/node-stats';
export type { ChangeEvent, ChangeKind } from './daemon/change-feed';
export type { BulkSyncOutcome } from './directory/maintenance/bulk-sync';
export { ControlClientError, monitor as controlMonitor, request as controlRequest } from './control/client';
export type { ControlRequest, EntryFilter, EntryView, PeerView } from './control/protocol';
export { type Config, type ConfigInput, ConfigError, loadConfigFile, loadKeyFile, resolveConfig } from './daemon/config';
export { NoEndpointError, type Route, type RouteSource } from './directory/router';
export {
  type ClientKey,
  clientKey,
  DiscriminatorClass,
  type EndpointDiscriminator,
  formatClientKey,
  parseClientKey,
} from './codec/client-key';
export { type Endpoint, formatEndpoint } from './codec/endpoint';
export { ProtocolError } from './codec/errors';
export type { Keyring } from './codec/frame';
export { CallStatus, decodeCallResponse, encodeCallRequest } from './frontend/preamble';
export { type PlacedCall, placeCall, readLine } from './frontend/call-client';
