// Installs the test qmail-queue (qmail-queue.ts) as an executable file, the way the agent
// expects to find /var/qmail/bin/qmail-queue: a path it can execute with the message on fd 0
// and the envelope on fd 1.

import * as fs from "node:fs";
import * as path from "node:path";
import { programArgs } from "./programs.js";

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** Writes `<dir>/qmail-queue`, injecting into the queue at `root`; returns its path. */
export function installQmailQueue(root: string, dir: string): string {
  const file = path.join(dir, "qmail-queue");
  const argv = [process.execPath, ...programArgs("qmail-queue"), path.resolve(root)];
  fs.writeFileSync(file, `#!/bin/sh\nexec ${argv.map(quote).join(" ")}\n`, { mode: 0o755 });
  return file;
}
