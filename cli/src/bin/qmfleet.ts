#!/usr/bin/env node
// qmfleet: qmHandle's flags across a whole fleet. See `qmfleet --help`.

import { EXIT_INTERNAL } from "../exit-codes.js";
import { runQmfleet } from "../program.js";

// First Ctrl-C cancels the calls in flight (every host still gets a state in the output);
// a second one leaves at once.
const interrupt = new AbortController();
process.on("SIGINT", () => {
  if (interrupt.signal.aborted) {
    process.exit(130);
  }
  process.stderr.write("qmfleet: interrupted: cancelling the calls in flight (Ctrl-C again to quit now)\n");
  interrupt.abort();
});

try {
  process.exitCode = await runQmfleet(process.argv.slice(2), process, interrupt.signal);
} catch (error) {
  process.stderr.write(`qmfleet: internal error: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = EXIT_INTERNAL;
}
