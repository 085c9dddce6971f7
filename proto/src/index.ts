// The public face of the wire contract: generated types and the grpc-js service definition,
// and what the commands on both sides of it share (messages.ts: all but the service).
export * from "./gen/qmfleet/v1/agent.js";
// The order of sorted listings: the agent sorts and the controller merges with the same comparison.
export * from "./message-order.js";
export * from "./messages.js";
