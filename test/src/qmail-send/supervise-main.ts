// A minimal daemontools `supervise` for tests (see supervise.ts), run as a process named
// supervise: in the service directory given as its argument it runs ./run, starts it again
// whenever it exits unless told down, and obeys svc's letters read from the FIFO
// supervise/control: "d" (TERM + CONT to the service, stay down), "u" (up). What it was last
// told is in supervise/want.
//
// Usage: supervise <service dir>

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

const dir = process.argv[2];
if (!dir) process.exit(100);
process.chdir(dir);
fs.mkdirSync("supervise", { recursive: true });
if (!fs.existsSync("supervise/control")) execFileSync("mkfifo", ["supervise/control"]);

let want: "up" | "down" = "up";
let child: ChildProcess | undefined;

function setWant(w: "up" | "down"): void {
  want = w;
  fs.writeFileSync("supervise/want.new", `${w}\n`);
  fs.renameSync("supervise/want.new", "supervise/want");
}

function startService(): void {
  if (want !== "up" || child) return;
  const c = spawn(path.resolve("run"), [], { stdio: "ignore" });
  child = c;
  c.on("exit", () => {
    child = undefined;
    // daemontools waits a second between restarts; a tenth keeps tests quick.
    setTimeout(startService, 100);
  });
}

// Read-write, so the FIFO never reads end-of-file when a writer (svc) closes it.
const fd = fs.openSync("supervise/control", fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
const control = new net.Socket({ fd, readable: true, writable: false });
control.on("data", (letters: Buffer) => {
  for (const letter of letters.toString("latin1")) {
    if (letter === "d") {
      setWant("down");
      child?.kill("SIGTERM");
      child?.kill("SIGCONT");
    } else if (letter === "u") {
      setWant("up");
      startService();
    }
  }
});

setWant("up");
startService();
