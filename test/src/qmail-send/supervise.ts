// A minimal daemontools `supervise` for tests: a real process named supervise, whose cwd is
// the service directory, that runs ./run, starts it again whenever it exits unless told down,
// and takes svc's commands ("d" down: TERM + CONT, "u" up) from supervise/control, a FIFO,
// like the real one. It shows why TERM alone cannot stop a supervised qmail-send.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { waitUntil } from "./control.js";
import { liveComm } from "./proc-locks.js";

const SUPERVISE = `#!/bin/bash
cd "$1" || exit 111
mkdir -p supervise
[ -p supervise/control ] || mkfifo supervise/control
exec 3<>supervise/control
setwant() { want=$1; echo "$want" > supervise/want.new && mv supervise/want.new supervise/want; }
setwant up
child=
while :; do
  if [ -n "$child" ] && ! kill -0 "$child" 2>/dev/null; then child=; fi
  if [ "$want" = up ] && [ -z "$child" ]; then ./run & child=$!; fi
  if read -r -t 0.05 -n 1 c <&3; then
    case "$c" in
      d) setwant down; if [ -n "$child" ]; then kill -TERM "$child"; kill -CONT "$child"; fi ;;
      u) setwant up ;;
    esac
  fi
done
`;

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
  const program = path.join(binDir, "supervise");
  fs.writeFileSync(program, SUPERVISE, { mode: 0o755 });
  fs.writeFileSync(
    path.join(serviceDir, "run"),
    `#!/bin/sh\nexec ${command.map(quote).join(" ")} >>${quote(logFile)} 2>&1\n`,
    { mode: 0o755 },
  );
  const child = spawn(program, [serviceDir], { detached: true, stdio: "ignore" });
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
