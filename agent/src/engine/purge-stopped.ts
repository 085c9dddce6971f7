// Stopped purge: qmHandle's way, done right (qmail-queue.md §7b). The agent's lock is held by
// the caller (purge.ts). Then:
// 1. the journal is written and synced BEFORE qmail-send is stopped, with how to start it
//    again, so an agent killed midway has its next start restart qmail-send (journal.ts);
// 2. with quarantine on and qmail-send running, each planned message is copied into a staging
//    area of the quarantine (hard link + envelope) BEFORE the stop: that is most of a message's
//    cost, and it needs no downtime (a link changes nothing qmail-send reads);
// 3. qmail-send is stopped (only if it runs) with a time-out and the configured escalation;
// 4. each planned message is re-verified, its copy checked against the envelope as it is now
//    (rewritten if a delivery happened meanwhile; taken now if there was none), and its files
//    removed in qmail's own order - local,
//    remote, bounce, info, todo, intd, and mess LAST (an interruption never leaves an orphan
//    mess that qmail-send would complain about forever). ENOENT is fine; any other error stops
//    the purge and reports exactly what was removed. Symlinks and other odd entries are never
//    followed and never removed;
// 5. qmail-send is started again in a finally, and only if it was running before; then the
//    copies of the removed messages move into the quarantine and the others are dropped (a
//    purge cut short by a crash has this done by the next start's recovery, journal.ts).
// While it is stopped, nothing else may start it: the purge checks, and stops if one did.

import * as fs from "node:fs";
import { PurgeJournal } from "./journal.js";
import { queueAccessError } from "./layout.js";
import type { PlannedMessage } from "./plan.js";
import {
  type MessageOutcome,
  type PurgeRun,
  quarantineTarget,
  readEnvelope,
  type Target,
  type TargetEnvelope,
  untouched,
  verifyTarget,
} from "./purge-target.js";
import {
  type ControlPlan,
  findQmailSend,
  planControl,
  type QmailSendConfig,
  startQmailSend,
  stopQmailSend,
} from "./qmail-send.js";
import type { Quarantine } from "./quarantine.js";
import { lstatQueueFile } from "./queue-file.js";
import { paced } from "./scan.js";

/** qmail's order: the message itself goes last. */
const REMOVAL_ORDER = ["local", "remote", "bounce", "info", "todo", "intd", "mess"] as const;

export interface StoppedOptions {
  stateDir: string;
  qmailSend: QmailSendConfig;
}

export interface StoppedResult {
  wasRunning: boolean;
  /** qmail-send was stopped by this purge. */
  stopped: boolean;
  restarted: boolean;
  /** From the stop until qmail-send runs again (0 when it was not running). */
  downtimeMs: number;
  /** The removal alone. */
  removalMs: number;
  /** Planned messages not looked at because the purge stopped early. */
  notProcessed: number;
  /** Why the purge stopped early, or why qmail-send could not be stopped or started. */
  error?: string;
  notes: string[];
}

// qmail-send is looked for at most this often during the removal (reading /proc/locks costs ~20 µs).
const RUNNING_CHECK_MS = 100;

/** A copy taken before the stop: its staging entry and the envelope it recorded. */
interface StagedCopy {
  quarantineId: string;
  envelope: string;
}

/** The envelope fields a copy records, as one comparable string. */
function envelopeKey(e: { sender: string; birthTime: number; recipients: readonly object[] }): string {
  return JSON.stringify([e.sender, e.birthTime, e.recipients]);
}

/**
 * Step 2: copies every planned message that verifies into `staging`, qmail-send still running.
 * One that does not verify now is left to the removal, which verifies again and reports it.
 */
async function stageCopies(
  run: PurgeRun,
  messages: Iterable<PlannedMessage>,
  staging: Quarantine,
): Promise<Map<string, StagedCopy>> {
  const staged = new Map<string, StagedCopy>();
  for await (const planned of paced(messages)) {
    const verdict = verifyTarget(run.layout, planned);
    if (verdict.kind !== "ok") continue;
    const t = verdict.target;
    try {
      const envelope = readEnvelope(t, run.routing);
      const quarantineId = copyTarget(run, staging, t, envelope);
      staged.set(planned.id, { quarantineId, envelope: envelopeKey(envelope) });
    } finally {
      t.close();
    }
  }
  return staged;
}

function copyTarget(run: PurgeRun, into: Quarantine, t: Target, envelope?: TargetEnvelope): string {
  const plan = { planId: run.planId, reason: run.reason, queueRoot: run.layout.root };
  return quarantineTarget(into, t, run.routing, plan, envelope);
}

/**
 * Step 4's copy: the one staged before the stop, its envelope rewritten if the queue's differs
 * now (a delivery marked a recipient done meanwhile: a restore must not send to it again), or
 * one taken now for a message that was not staged.
 */
function checkedCopy(run: PurgeRun, staging: Quarantine, copy: StagedCopy | undefined, t: Target): string {
  const envelope = readEnvelope(t, run.routing);
  // The copy links the inode verified before the stop, which cannot have been reused while
  // linked: a message verified again now under this id is that inode. Checked all the same.
  if (copy && staging.messInode(copy.quarantineId) !== t.ino) {
    staging.remove(copy.quarantineId);
    return copyTarget(run, staging, t, envelope);
  }
  if (!copy) return copyTarget(run, staging, t, envelope);
  if (envelopeKey(envelope) !== copy.envelope) {
    const entry = staging.get(copy.quarantineId);
    staging.writeEnvelope({
      ...entry,
      sender: envelope.sender,
      birthTime: envelope.birthTime,
      recipients: envelope.recipients,
    });
  }
  return copy.quarantineId;
}

export async function purgeStopped(
  run: PurgeRun,
  messages: () => Iterable<PlannedMessage>,
  opts: StoppedOptions,
): Promise<StoppedResult> {
  const root = run.layout.root;
  const holder = findQmailSend(root);
  const result: StoppedResult = {
    wasRunning: holder !== undefined,
    stopped: false,
    restarted: false,
    downtimeMs: 0,
    removalMs: 0,
    notProcessed: 0,
    notes: [],
  };
  const journal = PurgeJournal.begin(opts.stateDir, {
    planId: run.planId,
    queueRoot: root,
    wasRunning: !!holder,
  });
  let keepJournal = false;
  let control: ControlPlan | undefined;
  let downFrom = 0;
  // Copies are taken before the stop only when there is a stop: otherwise nothing is gained.
  const staging = holder && run.quarantine ? run.quarantine.stagingFor(run.planId) : undefined;
  // Quarantine ids the outcomes reported (removed, or failed once copied): the copies kept.
  const reported = new Set<string>();
  try {
    let staged = new Map<string, StagedCopy>();
    if (staging) {
      journal.record({ kind: "staging", at: new Date().toISOString(), dir: staging.dir }, true);
      staged = await stageCopies(run, messages(), staging);
    }
    if (holder) {
      control = planControl(root, holder.pid, opts.qmailSend);
      result.notes.push(control.detected);
      journal.record({ kind: "stopping", at: new Date().toISOString(), control }, true);
      downFrom = Date.now();
      try {
        const stop = await stopQmailSend(root, control, opts.qmailSend);
        result.stopped = true;
        result.notes.push(...stop.notes);
        journal.record({ kind: "stopped", at: new Date().toISOString(), pid: stop.pid }, true);
      } catch (error) {
        result.error = (error as Error).message;
        result.notes.push(...((error as { notes?: string[] }).notes ?? []));
        journal.record({ kind: "stop-failed", at: new Date().toISOString(), error: result.error }, true);
        // A TERMed qmail-send may still exit later: leave the journal for the next start.
        keepJournal = findQmailSend(root)?.pid === holder.pid;
        for (const _ of messages()) result.notProcessed++;
        return result;
      }
    }
    const removalStart = Date.now();
    let lastCheck = 0;
    let stoppedEarly = false;
    for (const planned of messages()) {
      if (stoppedEarly) {
        result.notProcessed++;
        continue;
      }
      if (Date.now() - lastCheck >= RUNNING_CHECK_MS) {
        lastCheck = Date.now();
        const other = findQmailSend(root);
        if (other) {
          result.error = `qmail-send was started by something else during the purge (pid ${other.pid}): stopped before message ${planned.id}, nothing more was removed`;
          stoppedEarly = true;
          result.notProcessed++;
          continue;
        }
      }
      const { outcome, fatal } = removeMessage(run, planned, staging && { staging, staged });
      if (outcome.quarantineId) reported.add(outcome.quarantineId);
      journal.record({
        kind: "message",
        id: outcome.id,
        outcome: outcome.outcome,
        touched: outcome.touched,
        ...(outcome.error ? { error: outcome.error } : {}),
        ...(outcome.quarantineId ? { quarantineId: outcome.quarantineId } : {}),
      });
      await run.emit(outcome);
      if (fatal) {
        const removed = outcome.touched.length > 0 ? outcome.touched.join(", ") : "nothing";
        result.error = `stopped at message ${planned.id}: ${outcome.error}; removed of it: ${removed}`;
        stoppedEarly = true;
      }
    }
    result.removalMs = Date.now() - removalStart;
  } finally {
    if (result.stopped && control) {
      try {
        const started = await startQmailSend(root, control, opts.qmailSend);
        result.restarted = true;
        result.notes.push(`started qmail-send again (pid ${started.pid}) with ${started.how}`);
        journal.record({ kind: "started", at: new Date().toISOString(), pid: started.pid }, true);
      } catch (error) {
        const message = (error as Error).message;
        result.error = result.error ? `${result.error}; ${message}` : message;
        journal.record({ kind: "start-failed", at: new Date().toISOString(), error: message }, true);
        keepJournal = true;
      }
      result.downtimeMs = Date.now() - downFrom;
    }
    // qmail-send runs again (or is left to the recovery): the copies go where they belong.
    if (staging && run.quarantine) {
      try {
        run.quarantine.settle(staging, (entry) => reported.has(entry.quarantineId));
      } catch (error) {
        const message = `the copies in ${staging.dir} could not be moved into the quarantine: ${(error as Error).message} (the next agent start does it)`;
        result.error = result.error ? `${result.error}; ${message}` : message;
        keepJournal = true;
      }
    }
    if (keepJournal) journal.close();
    else journal.finish();
  }
  return result;
}

/**
 * Removes one message's files in qmail's order; the outcome says exactly what went. `fatal`:
 * the file system refused something, the purge must stop here.
 */
function removeMessage(
  run: PurgeRun,
  planned: PlannedMessage,
  copies: { staging: Quarantine; staged: Map<string, StagedCopy> } | undefined,
): { outcome: MessageOutcome; fatal: boolean } {
  const touched: string[] = [];
  const base = { id: planned.id, fingerprint: planned.fingerprint, touched };
  let quarantineId: string | undefined;
  const failed = (error: string, fatal: boolean) => ({
    outcome: { ...base, outcome: "failed" as const, error, ...(quarantineId ? { quarantineId } : {}) },
    fatal,
  });
  let verdict: ReturnType<typeof verifyTarget>;
  try {
    verdict = verifyTarget(run.layout, planned);
  } catch (error) {
    return failed((error as Error).message, true);
  }
  if (verdict.kind !== "ok") return { outcome: untouched(planned, verdict), fatal: false };
  const t = verdict.target;
  try {
    // Before anything goes: one odd entry among its files leaves the whole message alone.
    const { present, odd } = t.presentFiles(REMOVAL_ORDER);
    if (odd) return failed(odd, false);
    if (copies) quarantineId = checkedCopy(run, copies.staging, copies.staged.get(planned.id), t);
    else if (run.quarantine) quarantineId = copyTarget(run, run.quarantine, t);
    for (const kind of REMOVAL_ORDER) {
      // Nothing creates a file named by this id meanwhile (qmail-send is stopped, and the mess
      // inode that is the id is held open): what was absent above needs no unlink, which
      // through node costs a thrown ENOENT (~9 us), ~4 a message, inside the downtime.
      if (kind !== "mess" && !present.has(kind)) continue;
      const rel = t.paths[kind];
      const abs = t.abs(rel);
      // The open mess keeps its inode, so the name can only be this message; checked all the same.
      if (kind === "mess" && lstatQueueFile(abs)?.ino !== t.ino) {
        return failed(`${rel} is no longer the verified message: not removed`, true);
      }
      try {
        fs.unlinkSync(abs);
        touched.push(rel);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        return failed(queueAccessError("remove", abs, error).message, true);
      }
    }
    return {
      outcome: { ...base, outcome: "removed", ...(quarantineId ? { quarantineId } : {}) },
      fatal: false,
    };
  } catch (error) {
    return failed((error as Error).message, true);
  } finally {
    t.close();
  }
}
