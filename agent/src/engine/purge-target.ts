// One message of a plan at the moment a purge changes it (both modes): re-verified against
// the plan, and held open while it is changed.
//
// Why the mess file stays open: the id is the mess inode number, and the file system gives a
// freed inode number to the next file. While the agent holds the old mess open, its inode is
// not freed, so no new message can get this id; every file named <id> that the purge touches
// then belongs to the message it verified, even if qmail-send retires it meanwhile.

import * as fs from "node:fs";
import { readBatchSync } from "./batch-read.js";
import type { Routing } from "./envelope.js";
import { parseInfo, parseRecipients, parseTodo } from "./envelope.js";
import { fingerprintOf, openNoAtime, readHead } from "./fingerprint.js";
import { messagePaths, queueAccessError, queuePath } from "./layout.js";
import type { MessagePaths, QueueLayout, Recipient } from "./model.js";
import type { PlannedMessage } from "./plan.js";
import type { Quarantine } from "./quarantine.js";
import { lstatQueueFile } from "./queue-file.js";

export type OutcomeKind = "neutralized" | "retired" | "removed" | "skipped_changed" | "gone" | "failed";

/** What happened to one planned message. */
export interface MessageOutcome {
  id: string;
  fingerprint: string;
  outcome: OutcomeKind;
  error?: string;
  /** Queue files removed or changed, in order (relative to the root): the exact report on failure. */
  touched: string[];
  quarantineId?: string;
}

export type Verdict =
  | { kind: "ok"; target: Target }
  /** Its mess file is gone: delivered or removed since the preview. */
  | { kind: "gone" }
  /** The id names another message now, or the file changed. */
  | { kind: "changed"; detail: string }
  /** Not something a purge may touch (a symlink, a directory, a name that is not its inode). */
  | { kind: "odd"; detail: string };

export class Target {
  constructor(
    readonly planned: PlannedMessage,
    readonly paths: MessagePaths,
    private readonly layout: QueueLayout,
    readonly fd: number,
    readonly ino: bigint,
    /** The start of the message (its header block, capped). */
    readonly head: Buffer,
  ) {}

  get id(): string {
    return this.planned.id;
  }

  get root(): string {
    return this.layout.root;
  }

  abs(rel: string): string {
    return queuePath(this.layout, rel);
  }

  /**
   * Which of `kinds` of its files are there now; or, at the first that is there but is no
   * regular file (never followed, never removed: the message is left alone), what it is.
   */
  presentFiles<K extends keyof MessagePaths>(kinds: readonly K[]): { present: Set<K>; odd?: string } {
    const present = new Set<K>();
    for (const kind of kinds) {
      const rel = this.paths[kind];
      const st = lstatQueueFile(this.abs(rel));
      if (st && !st.isFile()) return { present, odd: `${rel} is ${describeType(st)}: left alone` };
      if (st) present.add(kind);
    }
    return { present };
  }

  /** Still linked in mess/ (qmail-clean has not unlinked it). */
  stillQueued(): boolean {
    return fs.fstatSync(this.fd).nlink > 0;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function describeType(st: fs.BigIntStats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isSymbolicLink()) return "a symlink";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** Opens the planned message's mess file and checks it is still the message the preview showed. */
export function verifyTarget(layout: QueueLayout, planned: PlannedMessage): Verdict {
  const paths = messagePaths(layout, planned.id);
  const abs = queuePath(layout, paths.mess);
  let fd: number;
  try {
    fd = openNoAtime(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { kind: "gone" };
    if (code === "ELOOP")
      return { kind: "odd", detail: `${paths.mess} is a symlink: never followed, left alone` };
    throw queueAccessError("open", abs, error);
  }
  let keep = false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) return { kind: "odd", detail: `${paths.mess} is ${describeType(st)}: left alone` };
    if (st.ino.toString() !== planned.id) {
      return {
        kind: "odd",
        detail: `${paths.mess} is inode ${st.ino}, not ${planned.id}: not a file qmail-queue wrote, left alone`,
      };
    }
    const { size, head } = readHead(fd, 16 * 1024);
    const now = fingerprintOf(size, head);
    if (now !== planned.fingerprint) {
      return {
        kind: "changed",
        detail: `fingerprint of ${paths.mess} is ${now}, the plan has ${planned.fingerprint}: the id names another message now`,
      };
    }
    keep = true;
    return { kind: "ok", target: new Target(planned, paths, layout, fd, st.ino, head) };
  } finally {
    if (!keep) fs.closeSync(fd);
  }
}

export interface TargetEnvelope {
  sender: string;
  birthTime: number;
  recipients: Recipient[];
}

/**
 * Sender, birth time and recipients (with T/D state) as the queue holds them now. Read through
 * the native reader: an absent file (most messages have one channel) is an errno there, where
 * node's open throws an ENOENT (~9 us here), inside a stopped purge's downtime.
 */
export function readEnvelope(target: Target, routing: Routing): TargetEnvelope {
  const { info, local, remote, todo, intd } = target.paths;
  const read = (paths: string[], mtime: boolean) => readBatchSync(target.root, { paths, limit: 0, mtime });
  const infoFile = read([info], true).file(0);
  if (infoFile) {
    const channels = read([local, remote], false);
    const recipients = (["local", "remote"] as const).flatMap((channel, i) => {
      const file = channels.file(i);
      return file ? parseRecipients(file.data, channel, routing.vdoms).recipients : [];
    });
    return { sender: parseInfo(infoFile.data).sender, birthTime: infoFile.mtime, recipients };
  }
  // intd/ only when there is no todo/ file (file(i) reads the outcome, and throws, only when asked).
  const queued = read([todo, intd], true);
  const todoFile = queued.file(0) ?? queued.file(1);
  const parsed = todoFile ? parseTodo(todoFile.data) : { sender: "", recipients: [] as string[] };
  return {
    sender: parsed.sender,
    birthTime: todoFile?.mtime ?? 0,
    recipients: parsed.recipients.map((address) => ({
      channel: routing.channelOf(address),
      address,
      stored: address,
      done: false,
    })),
  };
}

/**
 * Hard-links the target into the quarantine with its envelope (as the queue holds it now unless
 * the caller has just read it); returns the quarantine id.
 */
export function quarantineTarget(
  quarantine: Quarantine,
  target: Target,
  routing: Routing,
  plan: { planId: string; reason: string; queueRoot: string },
  envelope = readEnvelope(target, routing),
): string {
  return quarantine.put(target.abs(target.paths.mess), target.fd, {
    originalId: target.id,
    fingerprint: target.planned.fingerprint,
    sender: envelope.sender,
    recipients: envelope.recipients,
    birthTime: envelope.birthTime,
    planId: plan.planId,
    reason: plan.reason,
    size: target.planned.size,
    subject: target.planned.subject,
    queueRoot: plan.queueRoot,
  }).quarantineId;
}

/** What both purge modes share while they run a plan. */
export interface PurgeRun {
  layout: QueueLayout;
  routing: Routing;
  /** Undefined: no quarantine, messages are deleted for good. */
  quarantine: Quarantine | undefined;
  planId: string;
  reason: string;
  /** Reports one outcome (awaited: the caller may stream it with back-pressure). */
  emit(outcome: MessageOutcome): Promise<void>;
}

/** The outcome of a message that was not changed. */
export function untouched(
  planned: PlannedMessage,
  verdict: Exclude<Verdict, { kind: "ok" }>,
): MessageOutcome {
  const base = { id: planned.id, fingerprint: planned.fingerprint, touched: [] };
  switch (verdict.kind) {
    case "gone":
      return {
        ...base,
        outcome: "gone",
        error: "its mess file is gone: delivered or removed since the preview",
      };
    case "changed":
      return { ...base, outcome: "skipped_changed", error: verdict.detail };
    case "odd":
      return { ...base, outcome: "failed", error: verdict.detail };
  }
}
