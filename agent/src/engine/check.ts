// A read-only consistency report of a queue: what qmail-send would complain about or trip on,
// and what an admin should look at before purging. Nothing here changes a file. The walk goes
// split dir by split dir, holding the names of one bucket at a time (plus todo/ and intd/).

import * as fs from "node:fs";
import { parseInfo, parseRecipients, parseTodo, VirtualDomains } from "./envelope.js";
import {
  type DetectedLayout,
  isMessageName,
  messagePaths,
  QueueAccessError,
  readDirEntries,
  SPLIT_DIRS,
  splitOf,
  todoDirs,
} from "./layout.js";
import { readQueueFile, readWholeFile, WHOLE_FILE_MAX } from "./queue-file.js";
import { paced } from "./scan.js";

/** Kinds as in proto QueueProblem. */
export type QueueProblemKind =
  | "orphan_info"
  | "orphan_mess"
  | "orphan_bounce"
  | "name_not_inode"
  | "wrong_split_dir"
  | "being_written"
  | "malformed_info"
  | "malformed_recipients"
  | "odd_entry"
  | "symlink"
  | "split_mismatch";

export interface QueueProblem {
  kind: QueueProblemKind;
  /** Relative to the queue root ("" for the root itself). */
  path: string;
  /** The message id concerned, "" when none. */
  id: string;
  detail: string;
}

function entries(root: string, rel: string): fs.Dirent[] {
  return readDirEntries(`${root}/${rel}`, true);
}

/** What `parse` finds wrong with an envelope file, or that it is too large to be one; none when it is gone. */
function envelopeProblems(abs: string, parse: (data: Buffer) => { problems: string[] }): string[] {
  try {
    const data = readQueueFile(abs, readWholeFile);
    return data ? parse(data).problems : [];
  } catch (err) {
    if (err instanceof QueueAccessError && err.code === "EFBIG")
      return [`larger than any envelope file (${WHOLE_FILE_MAX / 1024 / 1024} MiB), left unread`];
    throw err;
  }
}

const isFile = (abs: string) => fs.lstatSync(abs, { throwIfNoEntry: false })?.isFile() ?? false;

/**
 * Sorts the entries of a directory that should hold only message files: symlinks and odd
 * entries are reported; the message names are returned.
 */
function* messageEntries(root: string, rel: string, names: string[]): Generator<QueueProblem> {
  for (const e of entries(root, rel)) {
    const path = `${rel}/${e.name}`;
    if (e.isSymbolicLink()) {
      yield {
        kind: "symlink",
        path,
        id: "",
        detail: `symlink ${path} -> ${fs.readlinkSync(`${root}/${path}`)} (never followed)`,
      };
    } else if (!e.isFile() || !isMessageName(e.name)) {
      yield {
        kind: "odd_entry",
        path,
        id: "",
        detail: `${e.isDirectory() ? "directory" : "file"} ${path} is not a message (ignored)`,
      };
    } else {
      names.push(e.name);
    }
  }
}

function* checkAll(layout: DetectedLayout): Generator<QueueProblem> {
  const { root, split } = layout;
  for (const detail of layout.splitProblems) yield { kind: "split_mismatch", path: "", id: "", detail };

  // Top level of the split directories: only 0..split-1.
  for (const dir of SPLIT_DIRS) {
    for (const e of entries(root, dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isSymbolicLink())
        yield { kind: "symlink", path, id: "", detail: `symlink ${path} (never followed)` };
      else if (!(e.isDirectory() && isMessageName(e.name) && Number(e.name) < split)) {
        yield { kind: "odd_entry", path, id: "", detail: `${path} is not a split directory (ignored)` };
      }
    }
  }

  const todo = new Set<string>();
  const intd = new Set<string>();
  for (const [dir, set] of [
    ["todo", todo],
    ["intd", intd],
  ] as const) {
    for (const rel of todoDirs(layout, dir)) {
      const names: string[] = [];
      yield* messageEntries(root, rel, names);
      for (const id of names) {
        if (layout.bigTodo && rel !== `${dir}/${splitOf(layout, id)}`) {
          yield {
            kind: "wrong_split_dir",
            path: `${rel}/${id}`,
            id,
            detail: `${rel}/${id} belongs in ${messagePaths(layout, id)[dir]}`,
          };
        }
        set.add(id);
      }
    }
  }
  for (const id of intd) {
    if (!todo.has(id)) {
      const p = messagePaths(layout, id).intd;
      yield {
        kind: "being_written",
        path: p,
        id,
        detail: `${p} without todo: qmail-queue is still writing it (never touched)`,
      };
    }
  }
  for (const id of todo) {
    const p = messagePaths(layout, id).todo;
    const problems = envelopeProblems(`${root}/${p}`, parseTodo);
    if (problems.length > 0)
      yield { kind: "malformed_info", path: p, id, detail: `${p}: ${problems.join(", ")}` };
  }

  for (let n = 0; n < split; n++) {
    const names: Record<(typeof SPLIT_DIRS)[number], string[]> = {
      mess: [],
      info: [],
      local: [],
      remote: [],
    };
    for (const dir of SPLIT_DIRS) {
      const rel = `${dir}/${n}`;
      const all: string[] = [];
      yield* messageEntries(root, rel, all);
      for (const id of all) {
        if (splitOf(layout, id) !== n) {
          const right = messagePaths(layout, id)[dir];
          yield {
            kind: "wrong_split_dir",
            path: `${rel}/${id}`,
            id,
            detail: `${rel}/${id} belongs in ${right} (qmail-send cannot see it)`,
          };
        } else {
          names[dir].push(id);
        }
      }
    }
    const mess = new Set(names.mess);
    const info = new Set(names.info);
    for (const id of names.mess) {
      const p = `mess/${n}/${id}`;
      const ino = fs.lstatSync(`${root}/${p}`, { bigint: true, throwIfNoEntry: false })?.ino.toString();
      if (ino !== undefined && ino !== id) {
        yield {
          kind: "name_not_inode",
          path: p,
          id,
          detail: `${p} has inode ${ino}: not written by qmail-queue (copied or renamed)`,
        };
      }
      if (!info.has(id) && !todo.has(id) && !intd.has(id)) {
        yield { kind: "orphan_mess", path: p, id, detail: `${p} has no info, todo or intd file` };
      }
    }
    for (const id of names.info) {
      const p = `info/${n}/${id}`;
      if (!mess.has(id)) yield { kind: "orphan_info", path: p, id, detail: `${p} has no mess/${n}/${id}` };
      const problems = envelopeProblems(`${root}/${p}`, parseInfo);
      if (problems.length > 0)
        yield { kind: "malformed_info", path: p, id, detail: `${p}: ${problems.join(", ")}` };
    }
    for (const channel of ["local", "remote"] as const) {
      for (const id of names[channel]) {
        const p = `${channel}/${n}/${id}`;
        const problems = envelopeProblems(`${root}/${p}`, (data) =>
          parseRecipients(data, channel, VirtualDomains.none),
        );
        if (problems.length > 0)
          yield { kind: "malformed_recipients", path: p, id, detail: `${p}: ${problems.join(", ")}` };
      }
    }
  }

  const bounces: string[] = [];
  yield* messageEntries(root, "bounce", bounces);
  for (const id of bounces) {
    const mess = messagePaths(layout, id).mess;
    if (!isFile(`${root}/${mess}`)) {
      yield { kind: "orphan_bounce", path: `bounce/${id}`, id, detail: `bounce/${id} has no ${mess}` };
    }
  }
}

/** Every problem of the queue, as found; nothing is changed. */
export function checkQueue(layout: DetectedLayout): AsyncGenerator<QueueProblem> {
  return paced(checkAll(layout));
}
