// The contract's messages and the helpers both sides share, without the gRPC service (and so
// without grpc-js, ~0.1 s of every start): for code that never opens a connection, such as
// `qmfleet-agent local`. index.ts exports all of it too.
// Quoting for "the exact command to run" that previews print.
export * from "./command-line.js";
export * from "./gen/qmfleet/v1/queue.js";
// qmHandle's flags to a Filter: shared by `qmfleet` and `qmfleet-agent local`.
export * from "./qmhandle-flags.js";
