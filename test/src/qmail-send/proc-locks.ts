// Who holds a lock on a file, as the kernel lists it in /proc/locks. Written for the tests and
// the stand-in independently of the agent's own reader (agent/src/engine/qmail-send.ts), so
// tests of the agent compare it against separate evidence.

import * as fs from "node:fs";

/** The "major:minor:inode" key /proc/locks prints (kernel: "%02x:%02x:%lu"). */
export function lockKey(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  // st_dev as glibc encodes it (gnu_dev_major / gnu_dev_minor).
  const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${st.ino}`;
}

/** Pids holding (not waiting for) a lock on `file`; [] when the file does not exist. */
export function lockHolders(file: string): number[] {
  let key: string;
  try {
    key = lockKey(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const pids: number[] = [];
  for (const line of fs.readFileSync("/proc/locks", "utf8").split("\n")) {
    const fields = line.trim().split(/\s+/);
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146409 0 EOF"; waiters read "1: -> FLOCK ...".
    if (fields[1] === "->" || fields[5] !== key) continue;
    pids.push(Number(fields[4]));
  }
  return pids;
}

/** The comm (process name) of a pid, or undefined when it is gone or a zombie. */
export function liveComm(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ")".
  const close = stat.lastIndexOf(")");
  if (stat[close + 2] === "Z") return undefined;
  return stat.slice(stat.indexOf("(") + 1, close);
}

/** Pids of all live descendants of `pid`, with their comm. */
export function descendants(pid: number): Array<{ pid: number; comm: string }> {
  const children = new Map<number, Array<{ pid: number; comm: string }>>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(")");
    const [state, ppid] = stat.slice(close + 2).split(" ");
    if (state === "Z") continue;
    const list = children.get(Number(ppid)) ?? [];
    list.push({ pid: Number(entry), comm: stat.slice(stat.indexOf("(") + 1, close) });
    children.set(Number(ppid), list);
  }
  const out: Array<{ pid: number; comm: string }> = [];
  const walk = (p: number) => {
    for (const child of children.get(p) ?? []) {
      out.push(child);
      walk(child.pid);
    }
  };
  walk(pid);
  return out;
}
