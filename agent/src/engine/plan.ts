// Purge plans: the first step of a two-step destructive operation. A preview scans the queue
// with the filter and records exactly the messages it showed (id + fingerprint + a short
// summary); an execution may touch those and nothing else, each re-verified at the moment of
// change (purge-live.ts, purge-stopped.ts).
//
// A plan lives in the agent's state directory, not in memory, so a million-message plan costs
// a file, not a heap, and survives an agent restart until it expires:
//   <state>/plans/<plan id>/header.json      written last: a plan exists once this is there
//   <state>/plans/<plan id>/messages.jsonl   one PlannedMessage per line, in scan order
// Executing claims the plan by renaming its directory to <plan id>.executing (atomic), so a
// plan runs at most once, and removes it at the end. A plan is bound to its queue: host +
// device + inode of the queue root (another queue mounted at the same path is another queue).

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { Filter, MessageState, QueuedMessage, QueueLayout } from "./model.js";
import { scanQueue } from "./scan.js";

export type PurgeMode = "live" | "stopped";

/** What a plan remembers of each message: enough to re-verify it and to report on it. */
export interface PlannedMessage {
  id: string;
  fingerprint: string;
  state: MessageState;
  size: number;
  sender: string;
  subject: string;
}

export interface PlanHeader {
  planId: string;
  queueId: string;
  queueRoot: string;
  mode: PurgeMode;
  quarantine: boolean;
  reason: string;
  who: string;
  filter: Filter;
  /** Seconds since the epoch. */
  createdAt: number;
  expiresAt: number;
  matched: number;
  bytes: number;
  /** Of matched: still in todo/ (live mode handles them once qmail-send has preprocessed them). */
  todo: number;
  /** Matched but being written by qmail-queue (intd/ without todo/): never part of a plan. */
  beingWrittenSkipped: number;
}

export interface PlanSummary extends PlanHeader {
  /** The first sampleSize matches, whole. */
  sample: QueuedMessage[];
}

export interface CreatePlanOptions {
  stateDir: string;
  queueId: string;
  mode: PurgeMode;
  quarantine: boolean;
  reason: string;
  who: string;
  /** Default 15 minutes. */
  ttlMs?: number;
  /** Default 20. */
  sampleSize?: number;
  /** Called for every planned message, in order (awaited: a gRPC stream's back-pressure). */
  onMessage?: (message: QueuedMessage) => void | Promise<void>;
  /** Seconds since the epoch; default now. */
  now?: number;
}

const PLAN_ID_RE = /^[0-9a-f]{24}$/;
const DEFAULT_TTL_MS = 15 * 60 * 1000;

/** Host + device + inode of the queue root: the identity a plan is bound to. */
export function queueIdentity(queueRoot: string, hostname: string = os.hostname()): string {
  const st = fs.statSync(queueRoot, { bigint: true });
  return `${hostname}:${st.dev}:${st.ino}`;
}

function plansDir(stateDir: string): string {
  return path.join(stateDir, "plans");
}

/** A plan that cannot be executed; the message says why and what to do. */
export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlanError";
  }
}

/** Scans the queue with `filter` and writes the plan; being-written messages are never planned. */
export async function createPlan(
  layout: QueueLayout,
  filter: Filter,
  opts: CreatePlanOptions,
): Promise<PlanSummary> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const dir = plansDir(opts.stateDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeExpiredPlans(opts.stateDir, now);
  const planId = randomBytes(12).toString("hex");
  const work = path.join(dir, `${planId}.new`);
  fs.mkdirSync(work, { mode: 0o700 });
  const header: PlanHeader = {
    planId,
    queueId: opts.queueId,
    queueRoot: layout.root,
    mode: opts.mode,
    quarantine: opts.quarantine,
    reason: opts.reason,
    who: opts.who,
    filter,
    createdAt: now,
    expiresAt: now + Math.ceil((opts.ttlMs ?? DEFAULT_TTL_MS) / 1000),
    matched: 0,
    bytes: 0,
    todo: 0,
    beingWrittenSkipped: 0,
  };
  const sample: QueuedMessage[] = [];
  const sampleSize = opts.sampleSize ?? 20;
  const fd = fs.openSync(path.join(work, "messages.jsonl"), "wx", 0o600);
  try {
    let pending = "";
    // Criteria are ANDed: with an id list (qmHandle -dN) only those ids can match, so only
    // those are read instead of the whole queue.
    const ids = filter.criteria.find((c) => c.kind === "ids" && !c.negate);
    const only = ids?.kind === "ids" ? { ids: ids.ids } : {};
    for await (const candidate of scanQueue(layout, { headers: true, ...only, select: { filter, now } })) {
      const m = candidate.message;
      if (m.state === "being-written") {
        header.beingWrittenSkipped++;
        continue;
      }
      const planned: PlannedMessage = {
        id: m.id,
        fingerprint: m.fingerprint,
        state: m.state,
        size: m.size,
        sender: m.sender,
        subject: m.headers.subject,
      };
      pending += `${JSON.stringify(planned)}\n`;
      if (pending.length > 64 * 1024) {
        fs.writeSync(fd, pending);
        pending = "";
      }
      header.matched++;
      header.bytes += m.size;
      if (m.state === "todo") header.todo++;
      if (sample.length < sampleSize) sample.push(m);
      await opts.onMessage?.(m);
    }
    fs.writeSync(fd, pending);
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(work, { recursive: true, force: true });
    throw error;
  }
  fs.closeSync(fd);
  fs.writeFileSync(path.join(work, "header.json"), JSON.stringify(header), { mode: 0o600 });
  fs.renameSync(work, path.join(dir, planId));
  return { ...header, sample };
}

/** Removes plans past their expiry, and leftovers of previews or executions a dead agent left a day ago. */
export function removeExpiredPlans(stateDir: string, now = Math.floor(Date.now() / 1000)): string[] {
  const dir = plansDir(stateDir);
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return removed;
    throw error;
  }
  for (const name of names) {
    const [id, suffix] = name.split(".");
    if (!id || !PLAN_ID_RE.test(id)) continue;
    const full = path.join(dir, name);
    const dayOld = () => fs.statSync(full).mtimeMs / 1000 < now - 86_400;
    let expired: boolean;
    try {
      expired = suffix === undefined ? readHeader(full).expiresAt < now : dayOld();
    } catch {
      expired = dayOld(); // a plan without a readable header
    }
    if (expired) {
      fs.rmSync(full, { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

function readHeader(planDir: string): PlanHeader {
  return JSON.parse(fs.readFileSync(path.join(planDir, "header.json"), "utf8")) as PlanHeader;
}

/** A plan claimed for execution: its header, its messages read lazily, and its removal. */
export interface ClaimedPlan {
  header: PlanHeader;
  messages(): Generator<PlannedMessage>;
  /** The plan has been executed: remove it. */
  discard(): void;
}

/**
 * Claims a plan for execution: it must exist, not be expired, and belong to `queueId`. After
 * this, no other execution can claim it.
 */
export function claimPlan(
  stateDir: string,
  planId: string,
  queueId: string,
  now = Math.floor(Date.now() / 1000),
): ClaimedPlan {
  if (!PLAN_ID_RE.test(planId))
    throw new PlanError(`"${planId}" is not a plan id: preview the purge to get one`);
  const from = path.join(plansDir(stateDir), planId);
  const dir = `${from}.executing`;
  try {
    fs.renameSync(from, dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new PlanError(`plan ${planId} is unknown, expired or already executed: preview the purge again`);
    }
    throw error;
  }
  const header = readHeader(dir);
  const discard = () => fs.rmSync(dir, { recursive: true, force: true });
  if (header.expiresAt < now) {
    discard();
    throw new PlanError(
      `plan ${planId} expired at ${new Date(header.expiresAt * 1000).toISOString()}: preview the purge again`,
    );
  }
  if (header.queueId !== queueId) {
    discard();
    throw new PlanError(
      `plan ${planId} was made for queue ${header.queueId}, not this one (${queueId}): preview the purge on this queue`,
    );
  }
  return { header, messages: () => readPlanned(path.join(dir, "messages.jsonl")), discard };
}

/** The plan's messages, one line at a time (never the whole file in memory). */
function* readPlanned(file: string): Generator<PlannedMessage> {
  const fd = fs.openSync(file, "r");
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    // A subject's multi-byte character may straddle two chunks.
    const decoder = new StringDecoder("utf8");
    let rest = "";
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const lines = (rest + decoder.write(chunk.subarray(0, n))).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line !== "") yield JSON.parse(line) as PlannedMessage;
    }
    if (rest !== "") yield JSON.parse(rest) as PlannedMessage;
  } finally {
    fs.closeSync(fd);
  }
}
