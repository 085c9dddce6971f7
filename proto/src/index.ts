// The public face of the wire contract: generated types and the grpc-js service definition,
// and what the commands on both sides of it share.
// Quoting for "the exact command to run" that previews print.
export * from "./command-line.js";
export * from "./gen/qmfleet/v1/agent.js";
export * from "./gen/qmfleet/v1/queue.js";
// The order of sorted listings: the agent sorts and the controller merges with the same comparison.
export * from "./message-order.js";
// qmHandle's flags to a Filter: shared by `qmfleet` and `qmfleet-agent local`.
export * from "./qmhandle-flags.js";
