// Finding, signalling, stopping and starting qmail-send (qmail-queue.md §4.5, §7b).
//
// Which process is qmail-send: the holder of the lock on <root>/lock/sendmutex (qmail-send
// takes it with lock_exnb at start and keeps it for its life), read from /proc/locks by device
// and inode; `pidof` can return several pids or a stale one.
//
// Stopping: the configured stop (a command, TERM, or - zero-config - whatever supervises it),
// then wait WITH A TIME-OUT until the lock is released; the lock, not the command's exit code,
// says whether it stopped. On time-out, escalate if configured: TERM its qmail-remote and
// qmail-local descendants (each delivery becomes a deferral, "qmail-remote crashed"; verified on
// a real qmail-send, which then exits within a second), then KILL it. Otherwise give up, and
// make sure it will run again (a TERMed qmail-send exits by itself later; nothing must leave it
// stopped silently).
//
// Zero-config ("auto") detection, done while qmail-send runs, from /proc:
// 1. a supervisor among its ancestors (daemontools `supervise`, runit `runsv`, s6
//    `s6-supervise`): stop and start through its control FIFO, <service dir>/supervise/control,
//    with "d" and "u" - exactly what `svc -d` / `svc -u` (and `sv`, `s6-svc`) write. TERM alone
//    would not do: the supervisor restarts qmail-send at once.
// 2. a systemd service in its cgroup (pid 1 being systemd): `systemctl stop|start <unit>`.
// 3. otherwise TERM to its pid; to start it again, its own command line (/proc/PID/cmdline,
//    environ, cwd) re-run detached - unless that command line is the bare `qmail-send` that
//    qmail-start runs, which cannot run without it: then <qmail home>/rc (qmail's start script), and
//    if there is none, nothing: the caller reports that it must be started by hand.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { queueAccessError } from "./layout.js";
import {
  ancestorsOf,
  cwdOf,
  descendantsOf,
  isAlive,
  type LaunchRecord,
  launchRecordOf,
  processInfo,
  processTable,
  signalQuietly,
  systemdUnitOf,
} from "./processes.js";

export interface QmailSendConfig {
  /** A command, TERM to the lock holder, or "auto" (see the top of this file). */
  stop: string[] | "signal" | "auto";
  /** A command (it may return, like `svc -u`, or stay, like /var/qmail/rc), none (by hand), or "auto". */
  start: string[] | null | "auto";
  /** How long qmail-send may take to exit after the stop before escalating or giving up. */
  stopTimeoutMs: number;
  escalate: "children-then-kill" | "none";
  /** Path of qmail-queue, for re-injecting quarantined messages. */
  qmailQueue: string;
  /** After TERM to its deliveries, how long before KILL. */
  escalateWaitMs: number;
  /** How long a start may take to show a lock holder. */
  startTimeoutMs: number;
  /**
   * After a stop by TERM, how long the lock must stay free before it counts as stopped: a
   * supervisor the configuration did not mention restarts qmail-send within about a second.
   */
  settleMs: number;
}

export const DEFAULT_QMAIL_SEND_CONFIG: Readonly<QmailSendConfig> = Object.freeze({
  stop: "auto",
  start: "auto",
  stopTimeoutMs: 30_000,
  escalate: "children-then-kill",
  qmailQueue: "/var/qmail/bin/qmail-queue",
  escalateWaitMs: 10_000,
  startTimeoutMs: 30_000,
  settleMs: 1500,
});

export interface SendmutexHolder {
  pid: number;
  /** FLOCK (lock_exnb with flock), POSIX (with lockf/fcntl), OFDLCK. */
  lock: string;
}

const SUPERVISORS = new Set(["supervise", "runsv", "s6-supervise"]);
const DELIVERY_PROGRAMS = new Set(["qmail-remote", "qmail-local"]);
const POLL_MS = 50;

/** A qmail-send that could not be stopped or started; `notes` tell what was tried. */
export class QmailSendControlError extends Error {
  constructor(
    message: string,
    readonly notes: string[],
  ) {
    super(message);
    this.name = "QmailSendControlError";
  }
}

function sendmutexOf(root: string): string {
  return path.join(root, "lock", "sendmutex");
}

// st_dev as glibc encodes it (gnu_dev_major / gnu_dev_minor); /proc/locks prints the same
// device as "%02x:%02x".
function deviceKey(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
}

/** The process that holds lock/sendmutex (qmail-send), or undefined when none does. */
export function findQmailSend(root: string): SendmutexHolder | undefined {
  const file = sendmutexOf(root);
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(file, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw queueAccessError("stat", file, error);
  }
  const dev = deviceKey(st.dev);
  const ino = st.ino.toString();
  const exact: SendmutexHolder[] = [];
  let sameInode: SendmutexHolder | undefined;
  for (const line of fs.readFileSync("/proc/locks", "latin1").split("\n")) {
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146409 0 EOF"; a waiter reads "1: -> FLOCK ...".
    const f = line.trim().split(/\s+/);
    if (f[1] === "->" || f.length < 6) continue;
    const key = f[5] ?? "";
    const colon = key.lastIndexOf(":");
    if (key.slice(colon + 1) !== ino) continue;
    const holder = { pid: Number(f[4]), lock: f[1] ?? "" };
    if (key.slice(0, colon) === dev) exact.push(holder);
    else sameInode ??= holder;
  }
  for (const h of exact) if (h.pid > 0 && processInfo(h.pid)) return h;
  // /proc/locks names the process that took the lock: it may be gone while a child that
  // inherited the descriptor holds it (or -1 for OFD locks), and on overlay file systems the
  // listed device is the lower layer's. Then the holder is whoever has the file open.
  const listed = exact[0] ?? sameInode;
  if (!listed) return undefined;
  const opener = openerOf(st);
  return opener === undefined ? undefined : { pid: opener, lock: listed.lock };
}

function openerOf(target: fs.BigIntStats): number | undefined {
  const openers: number[] = [];
  for (const p of processTable()) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${p.pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let st: fs.BigIntStats | undefined;
      try {
        st = fs.statSync(`/proc/${p.pid}/fd/${fd}`, { bigint: true });
      } catch {
        continue; // closed meanwhile, or not ours to look at
      }
      if (st.ino === target.ino && st.dev === target.dev) {
        openers.push(p.pid);
        break;
      }
    }
  }
  return openers.find((pid) => processInfo(pid)?.comm === "qmail-send") ?? openers[0];
}

/** ALRM to qmail-send: every queued message is retried now. The pid signalled, or undefined when not running. */
export function alarmQmailSend(root: string): number | undefined {
  const holder = findQmailSend(root);
  if (!holder) return undefined;
  return signalQuietly(holder.pid, "SIGALRM") ? holder.pid : undefined;
}

/**
 * Wakes qmail-send to preprocess todo/ now, as qmail-queue does after a commit: one byte into
 * the lock/trigger FIFO. False when nobody listens (qmail-send not running) or there is no FIFO.
 */
export function pullTrigger(root: string): boolean {
  const fifo = path.join(root, "lock", "trigger");
  let fd: number;
  try {
    if (!fs.lstatSync(fifo).isFIFO()) return false;
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false; // ENXIO: no reader
  }
  try {
    fs.writeSync(fd, "\0");
    return true;
  } catch {
    return false; // EAGAIN: the FIFO is full, qmail-send has a wake-up pending anyway
  } finally {
    fs.closeSync(fd);
  }
}

export type StopMethod =
  | { kind: "signal" }
  | { kind: "command"; argv: string[] }
  | { kind: "supervise"; dir: string };

export type StartMethod =
  | { kind: "command"; argv: string[] }
  | { kind: "supervise"; dir: string }
  /** Run detached, the way it ran before. */
  | { kind: "respawn"; launch: LaunchRecord };

/** How this qmail-send is stopped and started again, learnt while it runs. JSON-safe (the journal keeps it). */
export interface ControlPlan {
  pid: number;
  stop: StopMethod;
  /** null: nobody knows how; it must be started by hand. */
  start: StartMethod | null;
  /** What was detected, in words, for reports. */
  detected: string;
}

export function describeStop(m: StopMethod, pid: number): string {
  switch (m.kind) {
    case "signal":
      return `TERM to qmail-send (pid ${pid})`;
    case "command":
      return m.argv.join(" ");
    case "supervise":
      return `svc -d ${m.dir}`;
  }
}

export function describeStart(m: StartMethod | null): string {
  if (!m) return "none known (start qmail-send by hand)";
  switch (m.kind) {
    case "command":
      return m.argv.join(" ");
    case "supervise":
      return `svc -u ${m.dir}`;
    case "respawn":
      return `${m.launch.argv.join(" ")} (detached, in ${m.launch.cwd})`;
  }
}

/** Decides how to stop and start the running qmail-send `pid` (see the top of this file). */
export function planControl(root: string, pid: number, config: QmailSendConfig): ControlPlan {
  const found: string[] = [];
  let stop: StopMethod | undefined =
    config.stop === "signal"
      ? { kind: "signal" }
      : Array.isArray(config.stop)
        ? command(config.stop)
        : undefined;
  let start: StartMethod | null | undefined =
    config.start === null ? null : Array.isArray(config.start) ? command(config.start) : undefined;
  if (stop === undefined || start === undefined) {
    const auto = detect(root, pid);
    found.push(auto.detected);
    stop ??= auto.stop;
    if (start === undefined) start = auto.start;
  }
  if (config.stop !== "auto") found.push(`stop configured: ${describeStop(stop, pid)}`);
  if (config.start !== "auto") found.push(`start configured: ${describeStart(start)}`);
  return { pid, stop, start, detected: found.join("; ") };
}

function command(argv: string[]): { kind: "command"; argv: string[] } {
  if (argv.length === 0 || argv[0] === "") throw new Error("qmail-send stop/start command is empty");
  return { kind: "command", argv };
}

function detect(root: string, pid: number): Omit<ControlPlan, "pid"> {
  const supervisor = ancestorsOf(pid).find((p) => SUPERVISORS.has(p.comm));
  if (supervisor) {
    const dir = cwdOf(supervisor.pid);
    return {
      stop: { kind: "supervise", dir },
      start: { kind: "supervise", dir },
      detected: `qmail-send (pid ${pid}) runs under ${supervisor.comm} (pid ${supervisor.pid}) of ${dir}`,
    };
  }
  const unit = processInfo(1)?.comm === "systemd" ? systemdUnitOf(pid) : undefined;
  if (unit) {
    return {
      stop: command(["systemctl", "stop", unit]),
      start: command(["systemctl", "start", unit]),
      detected: `qmail-send (pid ${pid}) runs in systemd unit ${unit}`,
    };
  }
  const launch = launchRecordOf(pid);
  const home = path.dirname(path.resolve(root));
  const rc = path.join(home, "rc");
  // qmail-start runs qmail-send with no argument, on pipes to qmail-lspawn, qmail-rspawn and
  // qmail-clean: that command line alone cannot start it again.
  if (launch.argv.length !== 1 || path.basename(launch.argv[0] ?? "") !== "qmail-send") {
    return {
      stop: { kind: "signal" },
      start: { kind: "respawn", launch },
      detected: `qmail-send (pid ${pid}) has no supervisor; it is started again from its command line`,
    };
  }
  if (isExecutable(rc)) {
    return {
      stop: { kind: "signal" },
      start: { kind: "respawn", launch: { argv: [rc], env: launch.env, cwd: home } },
      detected: `qmail-send (pid ${pid}) has no supervisor; it is started again with ${rc}`,
    };
  }
  return {
    stop: { kind: "signal" },
    start: null,
    detected: `qmail-send (pid ${pid}) has no supervisor and no ${rc}: after a stop it must be started by hand`,
  };
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type Release = "released" | "replaced" | "timeout";

/** Waits until `pid` no longer holds the lock: released, taken by another pid, or the deadline passed. */
async function waitForRelease(root: string, pid: number, deadline: number): Promise<Release> {
  for (;;) {
    const holder = findQmailSend(root);
    if (!holder) return "released";
    if (holder.pid !== pid) return "replaced";
    if (Date.now() >= deadline) return "timeout";
    await sleep(POLL_MS);
  }
}

interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  error?: string;
}

/** Runs a command in its own process group; after timeoutMs the whole group is KILLed. */
function runCommand(argv: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    const child = spawn(file ?? "", args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      if (output.length < 2000) output += chunk.toString("utf8");
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) signalQuietly(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, timedOut, output, error: error.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, output: output.trim() });
    });
  });
}

function commandTrouble(argv: string[], r: CommandResult, timeoutMs: number): string | undefined {
  const what = argv.join(" ");
  if (r.error) return `could not run ${what}: ${r.error}`;
  if (r.timedOut) return `${what} did not return within ${timeoutMs} ms and was killed`;
  if (r.code !== 0) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited ${r.code}`;
    return `${what} ${how}${r.output ? `: ${r.output}` : ""}`;
  }
  return undefined;
}

/** Writes one command letter to a daemontools/runit/s6 control FIFO, as svc does. */
function superviseControl(dir: string, letter: "d" | "u"): void {
  const fifo = path.join(dir, "supervise", "control");
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === "ENXIO"
        ? `cannot control ${dir}: its supervisor is not running (nothing reads ${fifo})`
        : `cannot open ${fifo}: ${code}`,
    );
  }
  try {
    fs.writeSync(fd, letter);
  } finally {
    fs.closeSync(fd);
  }
}

export interface StopResult {
  /** The pid that was stopped. */
  pid: number;
  /** How it ended: by the stop itself, after its deliveries were TERMed, or by KILL. */
  stoppedBy: "stop" | "deliveries-terminated" | "killed";
  /** What happened, in order, for the report and the audit log. */
  notes: string[];
  elapsedMs: number;
}

/**
 * Stops the qmail-send of `plan` and resolves once the lock is free. On failure it throws a
 * QmailSendControlError after having made sure qmail-send will run again (see ensureRunning).
 */
export async function stopQmailSend(
  root: string,
  plan: ControlPlan,
  config: QmailSendConfig,
): Promise<StopResult> {
  const started = Date.now();
  const deadline = started + config.stopTimeoutMs;
  const { pid } = plan;
  const notes: string[] = [`stop: ${describeStop(plan.stop, pid)}`];
  const giveUp = async (reason: string): Promise<never> => {
    notes.push(reason);
    notes.push(await ensureRunning(root, plan, config));
    throw new QmailSendControlError(`cannot stop qmail-send (pid ${pid}): ${reason}`, notes);
  };
  const done = async (stoppedBy: StopResult["stoppedBy"]): Promise<StopResult> => {
    if (plan.stop.kind === "signal") {
      const settle = Date.now() + config.settleMs;
      while (Date.now() < settle) {
        if (findQmailSend(root)) return giveUp(replacedReason(root, plan));
        await sleep(POLL_MS);
      }
    }
    return { pid, stoppedBy, notes, elapsedMs: Date.now() - started };
  };

  let commandFailed: string | undefined;
  switch (plan.stop.kind) {
    case "signal":
      signalQuietly(pid, "SIGTERM");
      break;
    case "supervise":
      try {
        superviseControl(plan.stop.dir, "d");
      } catch (error) {
        commandFailed = (error as Error).message;
      }
      break;
    case "command": {
      const r = await runCommand(plan.stop.argv, Math.max(1, deadline - Date.now()));
      commandFailed = commandTrouble(plan.stop.argv, r, config.stopTimeoutMs);
      break;
    }
  }
  if (commandFailed) {
    // The stop mechanism itself is broken: forcing qmail-send down could fight whatever
    // manages it. Stop only if it went anyway.
    notes.push(commandFailed);
    if ((await waitForRelease(root, pid, Date.now())) === "released") return done("stop");
    return giveUp(`${commandFailed}; qmail-send still holds lock/sendmutex`);
  }

  const first = await waitForRelease(root, pid, deadline);
  if (first === "released") return done("stop");
  if (first === "replaced") return giveUp(replacedReason(root, plan));
  if (config.escalate === "none") {
    return giveUp(
      `still running after ${config.stopTimeoutMs} ms (a delivery in progress?) and escalate is none`,
    );
  }

  const deliveries = descendantsOf(pid).filter((p) => DELIVERY_PROGRAMS.has(p.comm));
  for (const d of deliveries) signalQuietly(d.pid, "SIGTERM");
  notes.push(
    `still running after ${config.stopTimeoutMs} ms: TERM to its ${deliveries.length} deliveries in progress` +
      (deliveries.length > 0
        ? ` (${deliveries.map((d) => `${d.comm} ${d.pid}`).join(", ")}): each becomes a deferral`
        : ""),
  );
  const second = await waitForRelease(root, pid, Date.now() + config.escalateWaitMs);
  if (second === "released") return done("deliveries-terminated");
  if (second === "replaced") return giveUp(replacedReason(root, plan));

  signalQuietly(pid, "SIGKILL");
  notes.push(`still running ${config.escalateWaitMs} ms later: KILL to qmail-send (pid ${pid})`);
  const third = await waitForRelease(root, pid, Date.now() + Math.max(config.escalateWaitMs, 5_000));
  if (third === "released") return done("killed");
  if (third === "replaced") return giveUp(replacedReason(root, plan));
  return giveUp("it did not exit even after KILL (stuck in the kernel?)");
}

function replacedReason(root: string, plan: ControlPlan): string {
  const now = findQmailSend(root);
  return (
    `qmail-send exited but was restarted at once (now pid ${now?.pid ?? "?"}) by something that ` +
    `supervises it; configure the stop command of that supervisor (stop was: ${describeStop(plan.stop, plan.pid)})`
  );
}

/**
 * After a failed stop: make sure qmail-send runs now or will run again. A qmail-send that got
 * TERM only exits later (when its deliveries end), and nothing restarts it then, so the
 * supervisor is told "up" again, a start command is run, or - for a plain TERM - a watcher
 * starts it once it has exited. Returns what was done, in words.
 */
export async function ensureRunning(
  root: string,
  plan: ControlPlan,
  config: QmailSendConfig,
): Promise<string> {
  const holder = findQmailSend(root);
  if (!holder) {
    try {
      const r = await startQmailSend(root, plan, config);
      return `started qmail-send again (pid ${r.pid}) with ${describeStart(plan.start)}`;
    } catch (error) {
      return (error as Error).message;
    }
  }
  if (holder.pid !== plan.pid) return `qmail-send runs (pid ${holder.pid})`;
  if (plan.start?.kind === "supervise" || plan.start?.kind === "command") {
    try {
      issueStart(plan.start);
      return `qmail-send (pid ${holder.pid}) still runs; ${describeStart(plan.start)} issued so that it stays up`;
    } catch (error) {
      return `qmail-send (pid ${holder.pid}) still runs, but ${describeStart(plan.start)} failed: ${(error as Error).message}`;
    }
  }
  if (plan.stop.kind === "signal") {
    restartWhenExited(root, plan, config).catch(() => {
      // the journal's recovery restarts it if this agent dies first
    });
    return (
      `qmail-send (pid ${holder.pid}) got TERM and will exit when its deliveries end; ` +
      `it will be started again then with ${describeStart(plan.start)}`
    );
  }
  return `qmail-send (pid ${holder.pid}) still runs`;
}

/** Background: once `plan.pid` has released the lock, start qmail-send again (bounded by timeoutremote + margin). */
export async function restartWhenExited(
  root: string,
  plan: ControlPlan,
  config: QmailSendConfig,
  maxWaitMs = 1_500_000,
): Promise<number | undefined> {
  const outcome = await waitForRelease(root, plan.pid, Date.now() + maxWaitMs);
  if (outcome !== "released") return undefined;
  return (await startQmailSend(root, plan, config)).pid;
}

export interface StartResult {
  pid: number;
  /** It was running already: nothing was started. */
  alreadyRunning: boolean;
  how: string;
}

/**
 * Issues a start and returns at once. Commands and re-runs are detached and never killed: a
 * start command may return (svc -u, systemctl start) or become qmail itself (/var/qmail/rc).
 * `failure()` tells, later, whether it exited unsuccessfully.
 */
function issueStart(m: StartMethod): { failure(): string | undefined } {
  if (m.kind === "supervise") {
    superviseControl(m.dir, "u");
    return { failure: () => undefined };
  }
  const { argv, env, cwd } = m.kind === "respawn" ? m.launch : { argv: m.argv, env: process.env, cwd: "/" };
  const [file, ...args] = argv;
  let failure: string | undefined;
  const child = spawn(file ?? "", args, { cwd, env, detached: true, stdio: "ignore" });
  child.on("error", (error) => {
    failure = `could not run ${argv.join(" ")}: ${error.message}`;
  });
  child.on("exit", (code, signal) => {
    if (code !== 0) failure = `${argv.join(" ")} ${signal ? `was killed by ${signal}` : `exited ${code}`}`;
  });
  child.unref();
  return { failure: () => failure };
}

/**
 * Starts qmail-send with the plan's start method and resolves once a process holds
 * lock/sendmutex. A running qmail-send is left alone. Throws QmailSendControlError naming
 * what to do by hand when there is no start method or it did not work.
 */
export async function startQmailSend(
  root: string,
  plan: ControlPlan,
  config: QmailSendConfig,
): Promise<StartResult> {
  const running = findQmailSend(root);
  const how = describeStart(plan.start);
  if (running) return { pid: running.pid, alreadyRunning: true, how };
  if (!plan.start) {
    throw new QmailSendControlError(
      `qmail-send is not running and no way to start it is known: start it by hand (${plan.detected})`,
      [],
    );
  }
  let issued: { failure(): string | undefined };
  try {
    issued = issueStart(plan.start);
  } catch (error) {
    throw new QmailSendControlError(
      `cannot start qmail-send with ${how}: ${(error as Error).message}; start it by hand`,
      [],
    );
  }
  const deadline = Date.now() + config.startTimeoutMs;
  for (;;) {
    const holder = findQmailSend(root);
    if (holder && isAlive(holder.pid)) return { pid: holder.pid, alreadyRunning: false, how };
    const failure = issued.failure();
    if (failure || Date.now() >= deadline) {
      throw new QmailSendControlError(
        `qmail-send did not start within ${config.startTimeoutMs} ms of ${how}${failure ? ` (${failure})` : ""}: start it by hand`,
        [],
      );
    }
    await sleep(POLL_MS);
  }
}
