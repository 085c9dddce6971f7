// One message of a plan at the moment a purge changes it (both modes): re-verified against
// the plan, and held open while it is changed.
//
// Why the mess file stays open: the id is the mess inode number, and the file system gives a
// freed inode number to the next file. While the agent holds the old mess open, its inode is
// not freed, so no new message can get this id; every file named <id> that the purge touches
// then belongs to the message it verified, even if qmail-send retires it meanwhile.

import * as fs from "node:fs";
import type { Routing } from "./envelope.js";
import { parseInfo, parseRecipients, parseTodo } from "./envelope.js";
import { fingerprintOf, openNoAtime, readHead } from "./fingerprint.js";
import { messagePaths, queueAccessError, queuePath } from "./layout.js";
import type { MessagePaths, QueueLayout, Recipient } from "./model.js";
import type { PlannedMessage } from "./plan.js";
import type { Quarantine } from "./quarantine.js";
import { readQueueFile, readWholeFile } from "./queue-file.js";

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

  abs(rel: string): string {
    return queuePath(this.layout, rel);
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

/** The lstat of a queue file, undefined when absent. */
export function lstatQueueFile(abs: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(abs, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw queueAccessError("stat", abs, error);
  }
}

/** A queue file present but not a regular file (never followed, never removed): its description. */
export function oddEntry(abs: string, rel: string): string | undefined {
  const st = lstatQueueFile(abs);
  return st && !st.isFile() ? `${rel} is ${describeType(st)}: left alone` : undefined;
}

/** A whole envelope file with its mtime (seconds), undefined when there is none to read. */
function readEnvelopeFile(abs: string): { data: Buffer; mtime: number } | undefined {
  return readQueueFile(abs, readWholeFile);
}

export interface TargetEnvelope {
  sender: string;
  birthTime: number;
  recipients: Recipient[];
}

/** Sender, birth time and recipients (with T/D state) as the queue holds them now. */
export function readEnvelope(target: Target, routing: Routing): TargetEnvelope {
  const info = readEnvelopeFile(target.abs(target.paths.info));
  if (info) {
    const recipients: Recipient[] = [];
    for (const channel of ["local", "remote"] as const) {
      const file = readEnvelopeFile(target.abs(target.paths[channel]));
      if (file) recipients.push(...parseRecipients(file.data, channel, routing.vdoms).recipients);
    }
    return { sender: parseInfo(info.data).sender, birthTime: info.mtime, recipients };
  }
  const todo =
    readEnvelopeFile(target.abs(target.paths.todo)) ?? readEnvelopeFile(target.abs(target.paths.intd));
  const parsed = todo ? parseTodo(todo.data) : { sender: "", recipients: [] as string[] };
  return {
    sender: parsed.sender,
    birthTime: todo?.mtime ?? 0,
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
