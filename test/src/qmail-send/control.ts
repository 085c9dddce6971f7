// Test-side handle on the qmail-send stand-in (stand-in.ts): start it on a queue, read its log,
// signal it, pull the trigger, stop it and everything it started.
//
//   const qs = await startQmailSend(root, { rules: [{ match: "@slow\\.example$", action: "hang" }] });
//   const mark = qs.log().length;
//   qs.alarm();
//   await qs.waitForLog(/^end msg 1234$/, { from: mark });
//   await qs.dispose();

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { descendants, liveComm, lockHolders } from "./proc-locks.js";
import { programArgs } from "./programs.js";
import { PERL_LOCK, STAND_IN_DEFAULTS, type StandInConfig } from "./stand-in-options.js";

export type StandInOptions = Partial<Omit<StandInConfig, "root" | "logFile" | "readyFile" | "binDir">>;

const DELIVERY_COMMS = new Set(["qmail-remote", "qmail-local"]);

/** Polls `check` until it returns something other than undefined/false; throws after timeoutMs. */
export async function waitUntil<T>(
  check: () => T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A stand-in ready to run: its files, and the command that starts it holding the lock. */
export interface PreparedStandIn {
  config: StandInConfig;
  /** Holds bin/, config.json and the log ("current"); removed by StandIn.dispose(). */
  workDir: string;
  /** perl (flock lock/sendmutex, exec) + node + stand-in: run it as is, e.g. from a supervisor's run script. */
  command: string[];
}

/** Writes the stand-in's bin links, config and empty log for `root`, without starting it. */
export function prepareQmailSend(root: string, opts: StandInOptions = {}): PreparedStandIn {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "qmail-send-"));
  const binDir = path.join(workDir, "bin");
  fs.mkdirSync(binDir);
  // Links so each process has qmail's name (comm), as the agent's process-tree walk expects.
  fs.symlinkSync(process.execPath, path.join(binDir, "qmail-send"));
  fs.symlinkSync("/bin/sh", path.join(binDir, "qmail-rspawn"));
  for (const name of ["qmail-remote", "qmail-local"]) fs.symlinkSync(whichSleep(), path.join(binDir, name));
  const config: StandInConfig = {
    ...STAND_IN_DEFAULTS,
    ...opts,
    root: path.resolve(root),
    logFile: path.join(workDir, "current"),
    readyFile: path.join(workDir, "ready"),
    binDir,
  };
  const configFile = path.join(workDir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  fs.writeFileSync(config.logFile, "");
  const command = [
    "perl",
    "-e",
    PERL_LOCK,
    path.join(config.root, "lock", "sendmutex"),
    path.join(binDir, "qmail-send"),
    ...programArgs("stand-in"),
    "--config",
    configFile,
  ];
  return { config, workDir, command };
}

/** Starts the stand-in on `root` and resolves once it holds lock/sendmutex and has logged its first status. */
export async function startQmailSend(root: string, opts: StandInOptions = {}): Promise<StandIn> {
  const prepared = prepareQmailSend(root, opts);
  const out = fs.openSync(prepared.config.logFile, "a");
  const [file, ...args] = prepared.command;
  // Its own process group, so dispose() can end whatever it started and nothing else.
  const child = spawn(file ?? "perl", args, { detached: true, stdio: ["ignore", out, out] });
  fs.closeSync(out);
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not spawn perl to start the qmail-send stand-in");
  const standIn = new StandIn(pid, prepared.config, prepared.workDir);
  try {
    await waitUntil(
      () => {
        if (exited) throw new Error(`qmail-send stand-in exited at start:\n${standIn.log().join("\n")}`);
        return fs.existsSync(prepared.config.readyFile);
      },
      20_000,
      "the qmail-send stand-in to start",
    );
  } catch (error) {
    await standIn.dispose();
    throw error;
  }
  return standIn;
}

/** The stand-in that something else started from `prepared.command`, once it holds the lock. */
export async function attachQmailSend(prepared: PreparedStandIn, timeoutMs = 20_000): Promise<StandIn> {
  const pid = await waitUntil(
    () => qmailSendHolder(prepared.config.root),
    timeoutMs,
    "a qmail-send stand-in to hold lock/sendmutex",
  );
  return new StandIn(pid, prepared.config, prepared.workDir);
}

/** The pid holding lock/sendmutex once it runs as qmail-send (between its flock and its exec it is still perl). */
function qmailSendHolder(root: string, except?: number): number | undefined {
  return lockHolders(path.join(root, "lock", "sendmutex")).find(
    (p) => p !== except && liveComm(p) === "qmail-send",
  );
}

function whichSleep(): string {
  for (const p of ["/bin/sleep", "/usr/bin/sleep"]) if (fs.existsSync(p)) return p;
  throw new Error("no sleep(1) found (coreutils) for the stand-in's qmail-remote");
}

export class StandIn {
  /** Instances started on this queue after this one (found by successor()): stopped with it. */
  private readonly successors: StandIn[] = [];

  constructor(
    readonly pid: number,
    readonly config: StandInConfig,
    /** Holds bin/, config.json and the log ("current"); removed by dispose(). */
    readonly workDir: string,
  ) {}

  get root(): string {
    return this.config.root;
  }

  get logFile(): string {
    return this.config.logFile;
  }

  /** Every line logged so far (by every instance sharing this log). */
  log(): string[] {
    const text = fs.readFileSync(this.logFile, "utf8");
    return text === "" ? [] : text.replace(/\n$/, "").split("\n");
  }

  /** The first line matching `re` at or after line `from`. */
  async waitForLog(re: RegExp, opts: { from?: number; timeoutMs?: number } = {}): Promise<string> {
    const from = opts.from ?? 0;
    const timeoutMs = opts.timeoutMs ?? 15_000;
    return waitUntil(
      () =>
        this.log()
          .slice(from)
          .find((l) => re.test(l)),
      timeoutMs,
      `a log line matching ${re}`,
    ).catch(() => {
      throw new Error(`no log line matching ${re} within ${timeoutMs} ms; log:\n${this.log().join("\n")}`);
    });
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  alarm(): void {
    this.signal("SIGALRM");
  }

  /** Does what qmail-queue does after a commit: one byte into lock/trigger. */
  trigger(): void {
    const fd = fs.openSync(
      path.join(this.root, "lock", "trigger"),
      fs.constants.O_WRONLY | fs.constants.O_NONBLOCK,
    );
    try {
      fs.writeSync(fd, "x");
    } finally {
      fs.closeSync(fd);
    }
  }

  running(): boolean {
    return liveComm(this.pid) !== undefined;
  }

  /** Pids of the qmail-remote / qmail-local processes of deliveries in progress. */
  deliveries(): number[] {
    return descendants(this.pid)
      .filter((p) => DELIVERY_COMMS.has(p.comm))
      .map((p) => p.pid);
  }

  /** Until it has exited and its lock is released (a thread group leader shows as a zombie while its other threads still hold its files). */
  async waitForExit(timeoutMs = 15_000): Promise<void> {
    const mutex = path.join(this.root, "lock", "sendmutex");
    await waitUntil(
      () => !this.running() && !lockHolders(mutex).includes(this.pid),
      timeoutMs,
      `qmail-send stand-in ${this.pid} to exit`,
    );
  }

  /** After something restarted qmail-send on this queue: the new instance (same log and config). */
  async successor(timeoutMs = 20_000): Promise<StandIn> {
    const pid = await waitUntil(
      () => qmailSendHolder(this.root, this.pid),
      timeoutMs,
      "a new qmail-send stand-in to hold lock/sendmutex",
    );
    const next = new StandIn(pid, this.config, this.workDir);
    this.successors.push(next);
    return next;
  }

  /** TERM, end hanging deliveries so it can exit, KILL as a last resort; then its process group. */
  async stop(): Promise<void> {
    for (const next of this.successors.splice(0)) await next.stop();
    if (this.running()) {
      this.signal("SIGTERM");
      for (const p of this.deliveries()) killQuietly(p, "SIGTERM");
      await this.waitForExit(5_000).catch(() => killQuietly(this.pid, "SIGKILL"));
      await this.waitForExit(5_000);
    }
    killQuietly(-this.pid, "SIGKILL");
  }

  /** stop(), then removes the work directory with the log. */
  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
