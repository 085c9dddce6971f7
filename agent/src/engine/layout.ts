// Where a qmail queue keeps what (qmail-queue.md §1): conf-split is compiled into qmail, so it
// is detected from the numeric subdirectories of mess/, and info/, local/, remote/ must agree.
// Reading tolerates a disagreement (a listing is still useful in an incident); anything that
// changes the queue must call assertConsistentSplit first.

import * as fs from "node:fs";
import * as path from "node:path";
import type { MessagePaths, QueueLayout } from "./model.js";

/** The split directories of mess/, info/, local/, remote/. */
export const SPLIT_DIRS = ["mess", "info", "local", "remote"] as const;
export type SplitDir = (typeof SPLIT_DIRS)[number];

export interface DetectedLayout extends QueueLayout {
  /** False when a split directory is missing or extra in any of mess/, info/, local/, remote/. */
  splitConsistent: boolean;
  /** One line per disagreement, e.g. "info/ has no 22/ (mess/ has 0..22)". */
  splitProblems: string[];
}

/** A queue file or directory that cannot be read: the message names the path and the fix. */
export class QueueAccessError extends Error {
  readonly path: string;
  readonly code: string;
  constructor(message: string, filePath: string, code: string) {
    super(message);
    this.name = "QueueAccessError";
    this.path = filePath;
    this.code = code;
  }
}

/** `cannot <op> <path>: <CODE> (<what to do>)` for a failed file system call. */
export function queueAccessError(op: string, filePath: string, err: unknown): QueueAccessError {
  const code = (err as NodeJS.ErrnoException).code ?? "EIO";
  const fix =
    code === "EACCES" || code === "EPERM"
      ? "run the agent as root or as qmails"
      : code === "ENOENT"
        ? "check the queue root: qmail's is /var/qmail/queue, some systems use /var/spool/qmail"
        : code === "ENOTDIR"
          ? "the queue root must be qmail's queue directory"
          : code === "EFBIG"
            ? "larger than any qmail envelope file (64 MiB): damaged, look at it by hand"
            : "check the file system";
  return new QueueAccessError(`cannot ${op} ${filePath}: ${code} (${fix})`, filePath, code);
}

/** qmail names messages by inode number: only purely numeric names are messages. */
export function isMessageName(name: string): boolean {
  if (name.length === 0 || name.length > 20) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * The entries of a directory in the order the file system returns them, which is the order
 * qmail's own readdir loops see. fs.readdirSync sorts (libuv's scandir) and, measured on 3M
 * queue entries, takes twice as long as this opendir loop. A missing directory is empty when
 * missingOk (reading tolerates a damaged layout); any other failure is a QueueAccessError.
 */
export function readDirEntries(abs: string, missingOk: boolean): fs.Dirent[] {
  let dir: fs.Dir;
  try {
    dir = fs.opendirSync(abs, { bufferSize: 1024 });
  } catch (err) {
    if (missingOk && (err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw queueAccessError("read", abs, err);
  }
  const list: fs.Dirent[] = [];
  try {
    for (let e = dir.readSync(); e !== null; e = dir.readSync()) list.push(e);
  } catch (err) {
    throw queueAccessError("read", abs, err);
  } finally {
    dir.closeSync();
  }
  return list;
}

/** Numeric subdirectories (never symlinks) of root/dir; throws a QueueAccessError if unreadable. */
function numericDirs(root: string, dir: string): Set<number> {
  const found = new Set<number>();
  for (const e of readDirEntries(path.join(root, dir), false)) {
    if (e.isDirectory() && isMessageName(e.name)) found.add(Number(e.name));
  }
  return found;
}

function describe(set: Set<number>): string {
  const list = [...set].sort((a, b) => a - b);
  if (list.length === 0) return "none";
  const contiguous = list.every((n, i) => n === i);
  return contiguous ? `0..${list.length - 1}` : list.join(",");
}

/**
 * Reads the shape of the queue at root. A missing or unreadable root, or one without mess/,
 * is an error naming the path and the fix, never an empty queue.
 */
export function detectLayout(root: string): DetectedLayout {
  const abs = path.resolve(root);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    throw queueAccessError("read queue root", abs, err);
  }
  if (!st.isDirectory()) {
    throw new QueueAccessError(
      `cannot read queue root ${abs}: not a directory (point it at qmail's queue, e.g. /var/qmail/queue)`,
      abs,
      "ENOTDIR",
    );
  }
  try {
    fs.accessSync(abs, fs.constants.R_OK | fs.constants.X_OK);
  } catch (err) {
    throw queueAccessError("read queue root", abs, err);
  }
  const mess = numericDirs(abs, "mess");
  if (mess.size === 0) {
    throw new QueueAccessError(
      `cannot read queue root ${abs}: mess/ has no split directories (is this qmail's queue directory?)`,
      path.join(abs, "mess"),
      "ENOENT",
    );
  }
  const split = Math.max(...mess) + 1;
  const problems: string[] = [];
  const expected = new Set(Array.from({ length: split }, (_, n) => n));
  for (const dir of SPLIT_DIRS) {
    const found = dir === "mess" ? mess : numericDirs(abs, dir);
    const missing = [...expected].filter((n) => !found.has(n));
    const extra = [...found].filter((n) => !expected.has(n));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [];
      if (missing.length > 0) parts.push(`missing ${missing.join(",")}`);
      if (extra.length > 0) parts.push(`extra ${extra.join(",")}`);
      problems.push(
        `${dir}/ has split dirs ${describe(found)} (${parts.join("; ")}; split is ${split} from mess/)`,
      );
    }
  }
  let bigTodo = false;
  try {
    bigTodo = fs.lstatSync(path.join(abs, "todo", "0")).isDirectory();
  } catch {
    // No todo/0: flat todo (or an empty big-todo queue missing its dirs, which reads the same).
  }
  return { root: abs, split, bigTodo, splitConsistent: problems.length === 0, splitProblems: problems };
}

/** Refuses to go on when the split directories disagree: a change could hit the wrong files. */
export function assertConsistentSplit(layout: DetectedLayout): void {
  if (!layout.splitConsistent) {
    throw new QueueAccessError(
      `refusing to change ${layout.root}: its split directories disagree (${layout.splitProblems.join("; ")}); repair the queue with qmail-send stopped (queue-fix) first`,
      layout.root,
      "ESPLIT",
    );
  }
}

/** The split directory number of a message id (ids may exceed 2^53). */
export function splitOf(layout: QueueLayout, id: string): number {
  // Number arithmetic is exact while the id is below 2^53, which is every id in practice.
  const n = Number(id);
  return Number.isSafeInteger(n) ? n % layout.split : Number(BigInt(id) % BigInt(layout.split));
}

/** Paths of a message's files, relative to the queue root. */
export function messagePaths(layout: QueueLayout, id: string): MessagePaths {
  const n = splitOf(layout, id);
  const todoDir = layout.bigTodo ? `todo/${n}` : "todo";
  const intdDir = layout.bigTodo ? `intd/${n}` : "intd";
  return {
    mess: `mess/${n}/${id}`,
    info: `info/${n}/${id}`,
    local: `local/${n}/${id}`,
    remote: `remote/${n}/${id}`,
    todo: `${todoDir}/${id}`,
    intd: `${intdDir}/${id}`,
    bounce: `bounce/${id}`,
  };
}

/** Absolute path of a path relative to the queue root. */
export function queuePath(layout: QueueLayout, rel: string): string {
  return `${layout.root}/${rel}`;
}

/** The todo/ (or intd/) directories to walk: the dir itself, or its split dirs with big-todo. */
export function todoDirs(layout: QueueLayout, dir: "todo" | "intd"): string[] {
  if (!layout.bigTodo) return [dir];
  return Array.from({ length: layout.split }, (_, n) => `${dir}/${n}`);
}

/** qmail's home (control/ lives there): the queue root's parent. */
export function qmailHomeOf(layout: QueueLayout): string {
  return path.dirname(layout.root);
}
