// Starts the test `supervise` (supervise-main.ts): a real process named supervise, whose cwd is
// the service directory, that runs ./run, starts it again whenever it exits unless told down,
// and takes svc's commands ("d", "u") from supervise/control, a FIFO, like the real one. It
// shows why TERM alone cannot stop a supervised qmail-send.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { waitUntil } from "./control.js";
import { liveComm } from "./proc-locks.js";
import { programArgs } from "./programs.js";

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

export interface Supervise {
  pid: number;
  serviceDir: string;
  /** What it was last told: "up" or "down". */
  want(): string;
  /** KILLs it and its process group (the service it runs included). */
  kill(): void;
}

/** Creates `serviceDir` with a run script for `command`, and starts supervise on it. */
export async function startSupervise(
  serviceDir: string,
  command: string[],
  logFile: string,
): Promise<Supervise> {
  fs.mkdirSync(serviceDir, { recursive: true });
  const binDir = path.join(serviceDir, ".bin");
  fs.mkdirSync(binDir, { recursive: true });
  // A link named supervise, so the process is named supervise (comm), as the agent looks for.
  const program = path.join(binDir, "supervise");
  fs.symlinkSync(process.execPath, program);
  fs.writeFileSync(
    path.join(serviceDir, "run"),
    `#!/bin/sh\nexec ${command.map(quote).join(" ")} >>${quote(logFile)} 2>&1\n`,
    { mode: 0o755 },
  );
  const child = spawn(program, [...programArgs("supervise-main"), serviceDir], {
    detached: true,
    stdio: "ignore",
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the test supervise");
  child.unref();
  const wantFile = path.join(serviceDir, "supervise", "want");
  await waitUntil(
    () => liveComm(pid) === "supervise" && fs.existsSync(wantFile),
    10_000,
    "supervise to start",
  );
  return {
    pid,
    serviceDir,
    want: () => fs.readFileSync(wantFile, "utf8").trim(),
    kill: () => {
      try {
        process.kill(-pid, "SIGKILL");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    },
  };
}
