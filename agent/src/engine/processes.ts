// The process table as Linux shows it in /proc: who is alive, their names, parents and command
// lines. qmail-send control (qmail-send.ts) uses it to tell qmail-send's deliveries apart and
// to learn, while qmail-send runs, how it was started (so it can be started the same way).

import * as fs from "node:fs";

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The kernel's short name (15 characters at most): "qmail-send", "qmail-remote"... */
  comm: string;
  /** "R", "S", "D", "Z"... */
  state: string;
}

/** /proc/<pid>/stat, or undefined when the process is gone. */
export function processInfo(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and ")", so cut at the last ")".
  const close = stat.lastIndexOf(")");
  const [state = "", ppid = "0"] = stat.slice(close + 2).split(" ");
  return { pid, ppid: Number(ppid), comm: stat.slice(stat.indexOf("(") + 1, close), state };
}

/** Alive: exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const info = processInfo(pid);
  return info !== undefined && info.state !== "Z";
}

/** Every live process. */
export function processTable(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = processInfo(Number(name));
    if (info && info.state !== "Z") out.push(info);
  }
  return out;
}

/** Live descendants of pid (children, grandchildren...). */
export function descendantsOf(pid: number, table: ProcessInfo[] = processTable()): ProcessInfo[] {
  const byParent = new Map<number, ProcessInfo[]>();
  for (const p of table) {
    const list = byParent.get(p.ppid) ?? [];
    list.push(p);
    byParent.set(p.ppid, list);
  }
  const out: ProcessInfo[] = [];
  const pending = [pid];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const child of byParent.get(next) ?? []) {
      out.push(child);
      pending.push(child.pid);
    }
  }
  return out;
}

/** Parent, grandparent... up to (not including) pid 1's parent. */
export function ancestorsOf(pid: number): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  let p = processInfo(pid);
  while (p && p.ppid > 0) {
    const parent = processInfo(p.ppid);
    if (!parent) break;
    out.push(parent);
    p = parent;
  }
  return out;
}

/** NUL-separated /proc/<pid>/<file> (cmdline, environ) as a list. */
function nulList(pid: number, file: string): string[] {
  const text = fs.readFileSync(`/proc/${pid}/${file}`, "latin1");
  const parts = text.split("\0");
  if (parts.at(-1) === "") parts.pop();
  return parts;
}

/** How a running process was started: argv, environment and working directory. */
export interface LaunchRecord {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

export function launchRecordOf(pid: number): LaunchRecord {
  const env: Record<string, string> = {};
  for (const entry of nulList(pid, "environ")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { argv: nulList(pid, "cmdline"), env, cwd: fs.readlinkSync(`/proc/${pid}/cwd`) };
}

/** The cwd of a process (a supervisor's is its service directory). */
export function cwdOf(pid: number): string {
  return fs.readlinkSync(`/proc/${pid}/cwd`);
}

/** The systemd unit a process belongs to ("qmail.service"), from its cgroup, if any. */
export function systemdUnitOf(pid: number): string | undefined {
  try {
    return systemdUnitIn(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The service unit named in a /proc/<pid>/cgroup text. */
export function systemdUnitIn(cgroupText: string): string | undefined {
  for (const line of cgroupText.split("\n")) {
    // "0::/system.slice/qmail.service" (v2) or "1:name=systemd:/system.slice/qmail.service" (v1).
    const cgroupPath = line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
    const unit = cgroupPath.split("/").find((part) => part.endsWith(".service"));
    if (unit) return unit;
  }
  return undefined;
}

/** kill(2) that treats "no such process" as done. */
export function signalQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}
