// @qmfleet/controller: everything that spans hosts. It talks to agents over gRPC only and never
// reads a queue directory.

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
  type HostSelector,
  type Inventory,
  InventoryError,
  type InventoryHost,
  loadInventory,
  parseInventory,
  selectHosts,
  type TlsPaths,
} from "./inventory.js";
export { type FleetStats, type FleetStatsOptions, fleetStats, sumStats } from "./stats.js";
