// Reading one file of the queue while qmail-send works on it: the file may be gone by the time
// it is opened, and what sits under a queue name may be an odd entry. Both are "nothing to
// read" here, never an error; check.ts and the purge's odd-entry check report odd entries.

import * as fs from "node:fs";
import { openNoAtime } from "./fingerprint.js";
import { queueAccessError } from "./layout.js";

/**
 * Opens a queue file (O_NOATIME where allowed) and reads it with `read`; undefined when it is
 * not there to read: gone (qmail-send finished the message meanwhile, or an orphan), a symlink
 * (ELOOP: never followed), or a directory (EISDIR).
 */
export function readQueueFile<T>(abs: string, read: (fd: number) => T): T | undefined {
  let fd: number;
  try {
    fd = openNoAtime(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ELOOP") return undefined;
    throw queueAccessError("read", abs, err);
  }
  try {
    return read(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
    throw queueAccessError("read", abs, err);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The most a whole-file read takes (the envelope files: info, local, remote, todo). Past it a
 * file is damage, not an envelope (2 million recipients of 32 bytes), and reading it would take
 * the agent's memory. queue_files.c's WHOLE_MAX is the same.
 */
export const WHOLE_FILE_MAX = 64 * 1024 * 1024;

/** The whole of an open queue file; EFBIG past WHOLE_FILE_MAX. */
export function readWholeFile(fd: number): Buffer {
  if (fs.fstatSync(fd).size > WHOLE_FILE_MAX)
    throw Object.assign(new Error("file too large"), { code: "EFBIG" });
  return fs.readFileSync(fd);
}

/**
 * The lstat of a queue file, undefined when absent. Absence is told without an exception: a
 * purge asks for every file a message might have, most are absent, and a throwing lstat costs
 * three times a quiet one (9 against 3 us here), inside qmail-send's downtime in stopped mode.
 */
export function lstatQueueFile(abs: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  } catch (error) {
    throw queueAccessError("stat", abs, error);
  }
}
