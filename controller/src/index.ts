// @qmfleet/controller: everything that spans hosts. It talks to agents over gRPC only and never
// reads a queue directory.

export { fleetCheck } from "./check.js";
export { type AgentClients, agentClients, connectFleet, loadClientCredentials } from "./connection.js";
export {
  type FanOutOptions,
  fanOut,
  type HostCall,
  type HostCallContext,
  type HostOutcome,
  type HostState,
  type UnaryMethod,
  unaryCall,
} from "./fanout.js";
export {
  type FleetStreamEvent,
  type FleetStreamOptions,
  fleetStream,
  type OpenHostStream,
  STREAM_CEILING_MS,
  type StreamCallContext,
  serverStream,
  streamFanOut,
} from "./fleet-stream.js";
export {
  type HostSelector,
  type Inventory,
  InventoryError,
  type InventoryHost,
  loadInventory,
  parseInventory,
  selectHosts,
  type TlsPaths,
} from "./inventory.js";
export { fleetMessages } from "./messages.js";
export { loadPlans, PlanFileError, savePlans } from "./plan-file.js";
export {
  type ExecuteSettings,
  type FleetExecuteOptions,
  type FleetPreview,
  type FleetPreviewOptions,
  type FleetPurge,
  fleetExecutePurge,
  fleetPreviewPurge,
  type HostPlan,
  type HostPurge,
  type PurgeHostState,
  type PurgeTotals,
  sumReports,
} from "./purge.js";
export { type FleetRestoreOptions, fleetQuarantine, fleetRestore, type RestoreTarget } from "./quarantine.js";
export { type ReadMessageHandlers, readFleetMessage } from "./read-message.js";
export { type FleetRetryOptions, fleetRetrySooner, fleetSendNow } from "./retry.js";
export { type FleetStats, type FleetStatsOptions, fleetStats, STATS_COUNT_KEYS, sumStats } from "./stats.js";
export {
  DIMENSIONS,
  type FleetGroup,
  type FleetShape,
  type FleetSummary,
  type FleetSummaryRequest,
  fleetSummary,
  HOST_TOP_FACTOR,
  hostTop,
  mergeSummaries,
} from "./summary.js";
