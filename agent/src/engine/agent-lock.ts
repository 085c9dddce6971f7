// One change per queue at a time (qmail-queue.md §7b step 1): a purge, a restore or a retry
// takes this lock; reads never do, so listings go on during a purge.
//
// It is a real flock(2) on a file in the agent's state directory, so the kernel releases it
// when the holder dies (kill -9 included): no pid files, no stale-lock guessing, no pid reuse
// trap. Node has no flock API, so the agent opens the file and lets flock(1) (util-linux, in
// Debian's base system) lock the inherited descriptor: the lock belongs to the open file
// description, which the agent keeps open after flock(1) exits (verified: a second flock on
// the file fails until the agent closes it). /proc/locks then names flock(1)'s pid, long gone;
// the file's content names the holder instead. Every acquisition opens the file anew, so two
// purges in one agent process exclude each other too.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface LockHolder {
  pid: number;
  /** What holds it: "purge plan <id>", "restore", "retry". */
  purpose: string;
  since: string;
}

/** The queue is being changed by someone else; `holder` says who, when known. */
export class AgentLockBusyError extends Error {
  constructor(
    readonly file: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      `another change to this queue is in progress${
        holder ? ` (${holder.purpose}, agent pid ${holder.pid}, since ${holder.since})` : ""
      }: wait for it to finish (lock ${file})`,
    );
    this.name = "AgentLockBusyError";
  }
}

export interface AgentLock {
  readonly file: string;
  release(): void;
}

/** The lock file for a queue: named by the queue root's device and inode, so every path to it agrees. */
export function agentLockFile(stateDir: string, queueRoot: string): string {
  const st = fs.statSync(queueRoot, { bigint: true });
  return path.join(stateDir, "locks", `queue-${st.dev}-${st.ino}.lock`);
}

/** Takes the queue's lock or throws AgentLockBusyError at once (never waits). */
export function acquireAgentLock(stateDir: string, queueRoot: string, purpose: string): AgentLock {
  const file = agentLockFile(stateDir, queueRoot);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  let held = false;
  try {
    const r = spawnSync("flock", ["--exclusive", "--nonblock", "3"], {
      stdio: ["ignore", "ignore", "pipe", fd],
    });
    if (r.error) {
      throw new Error(`cannot lock ${file}: flock(1) could not run (${r.error.message}); install util-linux`);
    }
    if (r.status === 1) throw new AgentLockBusyError(file, readHolder(fd));
    if (r.status !== 0)
      throw new Error(`cannot lock ${file}: flock exited ${r.status}: ${String(r.stderr).trim()}`);
    held = true;
    const holder: LockHolder = { pid: process.pid, purpose, since: new Date().toISOString() };
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
  } finally {
    if (!held) fs.closeSync(fd);
  }
  let open = true;
  return {
    file,
    release: () => {
      if (!open) return;
      open = false;
      // Closing the last descriptor of the open file description releases the flock.
      fs.closeSync(fd);
    },
  };
}

function readHolder(fd: number): LockHolder | undefined {
  try {
    const buf = Buffer.alloc(1024);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return JSON.parse(buf.subarray(0, n).toString("utf8")) as LockHolder;
  } catch {
    return undefined;
  }
}

/** Runs `work` under the queue's lock, releasing it however `work` ends. */
export async function withAgentLock<T>(
  stateDir: string,
  queueRoot: string,
  purpose: string,
  work: () => Promise<T>,
): Promise<T> {
  const lock = acquireAgentLock(stateDir, queueRoot, purpose);
  try {
    return await work();
  } finally {
    lock.release();
  }
}
