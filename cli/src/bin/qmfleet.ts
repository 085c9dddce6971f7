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

// The reader went away (`qmfleet -l | head`): stop asking the agents, as Unix tools stop, quietly.
let readerGone = false;
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
  readerGone = true;
  interrupt.abort();
});

try {
  // Once the reader is gone, the hosts cancelled because of it are no news.
  const stderr = {
    isTTY: process.stderr.isTTY,
    write: (text: string) => readerGone || process.stderr.write(text),
  };
  const status = await runQmfleet(
    process.argv.slice(2),
    { stdout: process.stdout, stderr },
    interrupt.signal,
  );
  process.exitCode = readerGone ? 0 : status;
} catch (error) {
  process.stderr.write(`qmfleet: internal error: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = EXIT_INTERNAL;
}
