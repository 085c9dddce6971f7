// Is qmail-send running, and which pid is it? qmail-send holds an exclusive lock on
// lock/sendmutex for as long as it runs (qmail-send.c: lock_exnb at start-up), so the holder of
// that lock, as the kernel lists it in /proc/locks, is the reliable answer; `pidof` can return
// several pids or a stale one (qmail-queue.md §7b).

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";

export interface QmailSendState {
  running: boolean;
  /** Holder of lock/sendmutex; 0 when nobody holds it. */
  pid: number;
}

// st_dev as glibc encodes it (gnu_dev_major / gnu_dev_minor); /proc/locks prints the same device
// as "major:minor" in hex.
function deviceName(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
}

/** Reads who holds `<root>/lock/sendmutex`. A missing sendmutex means qmail-send is not running. */
export async function qmailSendState(queueRoot: string): Promise<QmailSendState> {
  let key: string;
  try {
    const st = await stat(join(queueRoot, "lock", "sendmutex"), { bigint: true });
    key = `${deviceName(st.dev)}:${st.ino}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { running: false, pid: 0 };
    }
    throw error;
  }
  // Lines look like "3: FLOCK  ADVISORY  WRITE 8176 fe:00:2146740 0 EOF"; a waiter blocked on a
  // lock is listed as "3: -> FLOCK ..." and is not the holder.
  for (const line of (await readFile("/proc/locks", "utf8")).split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === "->" || fields[5] !== key) {
      continue;
    }
    // An open-file-description lock (OFDLCK) lists pid -1: held, by a process we cannot name.
    const pid = Number(fields[4]);
    return { running: true, pid: Number.isInteger(pid) && pid > 0 ? pid : 0 };
  }
  return { running: false, pid: 0 };
}
