// The qmail-send stand-in and what goes with it, for tests of the agent and end-to-end suites.

export * from "./control.js";
export * from "./proc-locks.js";
export * from "./qmail-queue-script.js";
export * from "./stand-in-options.js";
export * from "./supervise.js";
