// @qmfleet/cli: the qmfleet command. Its entry point is bin/qmfleet.ts; runQmfleet runs it in
// process (tests, embedding).
export { type Io, runQmfleet } from "./program.js";
