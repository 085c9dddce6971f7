// The stopped purge's journal (qmail-queue.md §7b step 4): written, and synced, before
// qmail-send is stopped, so that an agent that dies midway (kill -9, OOM, power) learns at its
// next start that it left qmail-send stopped, starts it again the way it was running, and
// reports the interrupted plan with what it had removed.
//
// One file per purge, JSON lines: `begin`, `staging` (where the copies taken before the stop
// are), `stopping` (with how to start qmail-send again), `stopped`, one `message` line per
// message, `started`; deleted when the purge is over.
// The phase lines are fsynced; message lines are not (a kill -9 keeps them in the page cache;
// only a power loss can drop the last few, and the queue itself then shows what is gone).

import * as fs from "node:fs";
import * as path from "node:path";
import { AgentLockBusyError, acquireAgentLock } from "./agent-lock.js";
import {
  type ControlPlan,
  describeStart,
  ensureRunning,
  findQmailSend,
  type QmailSendConfig,
  startQmailSend,
} from "./qmail-send.js";
import { Quarantine } from "./quarantine.js";

export type JournalEvent =
  | { kind: "begin"; planId: string; queueRoot: string; agentPid: number; at: string; wasRunning: boolean }
  /** Copies of the plan's messages go to this staging directory of the quarantine before the stop. */
  | { kind: "staging"; at: string; dir: string }
  | { kind: "stopping"; at: string; control: ControlPlan }
  | { kind: "stopped"; at: string; pid: number }
  | { kind: "stop-failed"; at: string; error: string }
  | { kind: "message"; id: string; outcome: string; touched: string[]; error?: string; quarantineId?: string }
  | { kind: "started"; at: string; pid: number }
  | { kind: "start-failed"; at: string; error: string };

type Begin = Extract<JournalEvent, { kind: "begin" }>;

function journalDir(stateDir: string): string {
  return path.join(stateDir, "journal");
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class PurgeJournal {
  private constructor(
    readonly file: string,
    private fd: number | undefined,
  ) {}

  /** Creates the journal of a purge and syncs it to disk before returning. */
  static begin(stateDir: string, begin: Omit<Begin, "kind" | "at" | "agentPid">): PurgeJournal {
    const dir = journalDir(stateDir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${begin.planId}.jsonl`);
    const fd = fs.openSync(file, "wx", 0o600);
    const journal = new PurgeJournal(file, fd);
    journal.record({ kind: "begin", at: new Date().toISOString(), agentPid: process.pid, ...begin }, true);
    syncDir(dir);
    return journal;
  }

  record(event: JournalEvent, sync = false): void {
    if (this.fd === undefined) throw new Error(`journal ${this.file} is closed`);
    fs.writeSync(this.fd, `${JSON.stringify(event)}\n`);
    if (sync) fs.fsyncSync(this.fd);
  }

  /** The purge is over and qmail-send is as it was: the journal goes. */
  finish(): void {
    this.close();
    fs.unlinkSync(this.file);
    syncDir(path.dirname(this.file));
  }

  /** Leaves the file for the next start's recovery (qmail-send could not be started again). */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** What a journal left behind says. */
export interface InterruptedPurge {
  file: string;
  planId: string;
  queueRoot: string;
  agentPid: number;
  startedAt: string;
  wasRunning: boolean;
  /** The staging directory of the copies taken before the stop, if any were. */
  staging: string | undefined;
  /** How to start qmail-send again; present once the stop was about to be issued. */
  control: ControlPlan | undefined;
  stopIssued: boolean;
  restarted: boolean;
  /** Per message, the last line written for it. */
  messages: Array<{ id: string; outcome: string; touched: string[]; error?: string; quarantineId?: string }>;
  lastEvent: JournalEvent["kind"];
}

/** Reads every journal left in the state directory. */
export function readJournals(stateDir: string): InterruptedPurge[] {
  const dir = journalDir(stateDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const out: InterruptedPurge[] = [];
  for (const name of names.filter((n) => n.endsWith(".jsonl")).sort()) {
    const file = path.join(dir, name);
    const events = fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((line) => line.trim() !== "")
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as JournalEvent];
        } catch {
          return []; // a line cut by the crash
        }
      });
    const begin = events.find((e): e is Begin => e.kind === "begin");
    if (!begin) continue;
    const stopping = events.find((e) => e.kind === "stopping");
    const staging = events.find((e) => e.kind === "staging");
    out.push({
      file,
      planId: begin.planId,
      queueRoot: begin.queueRoot,
      agentPid: begin.agentPid,
      startedAt: begin.at,
      wasRunning: begin.wasRunning,
      staging: staging?.kind === "staging" ? staging.dir : undefined,
      control: stopping?.kind === "stopping" ? stopping.control : undefined,
      stopIssued: stopping !== undefined,
      restarted: events.some((e) => e.kind === "started"),
      messages: events.flatMap((e) => (e.kind === "message" ? [e] : [])),
      lastEvent: events.at(-1)?.kind ?? "begin",
    });
  }
  return out;
}

export interface RecoveryReport {
  planId: string;
  queueRoot: string;
  /** The agent that ran it and when. */
  agentPid: number;
  startedAt: string;
  /** The phase it was in when it stopped. */
  lastEvent: JournalEvent["kind"];
  removed: string[];
  failed: Array<{ id: string; error: string; touched: string[] }>;
  /** What recovery did about qmail-send, in words. */
  qmailSend: string;
  /** Copies taken before the stop that went into the quarantine (their messages were removed). */
  quarantined: number;
  /** True when qmail-send runs (or never ran) and the journal was removed. */
  resolved: boolean;
}

/**
 * At agent start: for every purge a dead agent left unfinished, starts qmail-send again if that
 * purge had stopped it, and reports the plan. A journal whose queue is locked by a live agent
 * is left alone; one whose qmail-send cannot be started stays for the next try.
 */
export async function recoverInterruptedPurges(
  stateDir: string,
  config: QmailSendConfig,
): Promise<RecoveryReport[]> {
  const reports: RecoveryReport[] = [];
  for (const j of readJournals(stateDir)) {
    const report: RecoveryReport = {
      planId: j.planId,
      queueRoot: j.queueRoot,
      agentPid: j.agentPid,
      startedAt: j.startedAt,
      lastEvent: j.lastEvent,
      removed: j.messages.filter((m) => m.outcome === "removed").map((m) => m.id),
      failed: j.messages
        .filter((m) => m.outcome === "failed")
        .map((m) => ({ id: m.id, error: m.error ?? "", touched: m.touched })),
      qmailSend: "",
      quarantined: 0,
      resolved: false,
    };
    reports.push(report);
    let lock: ReturnType<typeof acquireAgentLock>;
    try {
      lock = acquireAgentLock(stateDir, j.queueRoot, `recovery of plan ${j.planId}`);
    } catch (error) {
      report.qmailSend =
        error instanceof AgentLockBusyError
          ? `left alone: ${error.message}`
          : `cannot check the queue: ${(error as Error).message}`;
      continue;
    }
    try {
      if (j.staging) report.quarantined = settleCopies(j, j.staging);
      report.qmailSend = await restoreQmailSend(j, config);
      report.resolved = !report.qmailSend.startsWith("could not");
      if (report.resolved) fs.unlinkSync(j.file);
    } finally {
      lock.release();
    }
  }
  return reports;
}

/**
 * The copies a stopped purge took before stopping qmail-send: those its journal reported (the
 * message removed, or failed part way) go into the quarantine, the others are dropped (their
 * messages are still queued, or were delivered). Message lines are not fsynced, so only a power
 * loss can lose the line of a removed message, and its copy with it.
 */
function settleCopies(j: InterruptedPurge, stagingDir: string): number {
  const reported = new Set(j.messages.flatMap((m) => (m.quarantineId ? [m.quarantineId] : [])));
  const quarantine = new Quarantine(path.dirname(stagingDir));
  return quarantine.settle(new Quarantine(stagingDir), (entry) => reported.has(entry.quarantineId)).length;
}

async function restoreQmailSend(j: InterruptedPurge, config: QmailSendConfig): Promise<string> {
  const running = findQmailSend(j.queueRoot);
  if (running && j.stopIssued && j.control && !j.restarted && running.pid === j.control.pid) {
    // The agent died while waiting for the stop: qmail-send may still exit because of it.
    return ensureRunning(j.queueRoot, j.control, config);
  }
  if (running) return `qmail-send runs (pid ${running.pid})`;
  if (!j.wasRunning) return "qmail-send was not running before the purge and was left so";
  if (!j.stopIssued || !j.control)
    return "the purge died before stopping qmail-send, which is not running now: left as it is";
  try {
    const r = await startQmailSend(j.queueRoot, j.control, config);
    return `started qmail-send again (pid ${r.pid}) with ${describeStart(j.control.start)}`;
  } catch (error) {
    return `could not start qmail-send: ${(error as Error).message}`;
  }
}
