// Purging a queue, start to end: the API the gRPC handlers (PreviewPurge, ExecutePurge,
// ListQuarantine, RestoreQuarantine) and `qmfleet-agent local` call.
//
//   const plan = await previewPurge(env, { filter, reason: "spam run" }, (m) => stream(m));
//   const report = await executePurge(env, plan.planId, { who: "ops" }, (o) => stream(o));
//
// previewPurge scans with the filter and writes a plan (plan.ts); executePurge takes the
// queue's lock (agent-lock.ts), claims the plan (once), and runs it live (purge-live.ts) or
// stopped (purge-stopped.ts), each message re-verified at the moment of change, never more than
// the preview showed. Everything is written to the audit log: who, why, filter, plan, each
// message's outcome, qmail-send's downtime.

import { acquireAgentLock, withAgentLock } from "./agent-lock.js";
import type { AuditLog } from "./audit.js";
import { loadRouting } from "./envelope.js";
import { type RecoveryReport, recoverInterruptedPurges } from "./journal.js";
import { assertConsistentSplit, detectLayout, qmailHomeOf } from "./layout.js";
import type { Filter, QueuedMessage } from "./model.js";
import { claimPlan, createPlan, type PlanSummary, type PurgeMode, queueIdentity } from "./plan.js";
import { type LiveOptions, purgeLive } from "./purge-live.js";
import { purgeStopped } from "./purge-stopped.js";
import type { MessageOutcome, OutcomeKind, PurgeRun } from "./purge-target.js";
import { findQmailSend, type QmailSendConfig } from "./qmail-send.js";
import { defaultQuarantineDir, Quarantine, type QuarantineEntry, type RestoreResult } from "./quarantine.js";

/** Where and how this agent purges one queue. */
export interface PurgeEnvironment {
  queueRoot: string;
  /** The agent's own files: plans/, journal/, locks/ (e.g. /var/lib/qmfleet-agent). */
  stateDir: string;
  /** Part of the queue id plans are bound to; default os.hostname(). */
  hostname?: string;
  qmailSend: QmailSendConfig;
  /** Default <qmail home>/qmfleet-quarantine. */
  quarantineDir?: string;
  /** Quarantine is refused below this much free space or inodes (percent). Default 5. */
  quarantineMinFreePercent?: number;
  /** Quarantined messages older than this are removed when a purge runs. Default 14. */
  quarantineRetentionDays?: number;
  audit?: AuditLog;
}

export interface PreviewRequest {
  filter: Filter;
  /** "auto" (default): live while qmail-send runs, stopped (without starting it) when it does not. */
  mode?: PurgeMode | "auto";
  /** Keep a copy of each message (default true); false deletes for good. */
  quarantine?: boolean;
  reason?: string;
  /** Client certificate identity or local user, for the audit log. */
  who?: string;
  sampleSize?: number;
  ttlMs?: number;
}

export interface ExecuteRequest extends LiveOptions {
  /** Defaults to the preview's reason. */
  reason?: string;
  who?: string;
}

export interface PurgeReport {
  planId: string;
  mode: PurgeMode;
  /** Neutralized (live) or removed (stopped). */
  purged: number;
  retired: number;
  skippedChanged: number;
  gone: number;
  failed: number;
  /** Live: neutralized, not yet retired when the wait ended. */
  awaitingRetirement: number;
  /** Stopped: planned messages not looked at because the purge stopped early. */
  notProcessed: number;
  downtimeMs: number;
  removalMs: number;
  qmailSendRestarted: boolean;
  /** Why the purge stopped early or qmail-send could not be stopped or started. */
  error?: string;
  notes: string[];
}

function quarantineOf(env: PurgeEnvironment): Quarantine {
  return new Quarantine(env.quarantineDir ?? defaultQuarantineDir(env.queueRoot), {
    minFreePercent: env.quarantineMinFreePercent ?? 5,
  });
}

/** Step one: scan with the filter, write the plan, stream each planned message to onMessage. */
export async function previewPurge(
  env: PurgeEnvironment,
  req: PreviewRequest,
  onMessage?: (message: QueuedMessage) => void | Promise<void>,
): Promise<PlanSummary> {
  const layout = detectLayout(env.queueRoot);
  const mode: PurgeMode =
    req.mode === "live" || req.mode === "stopped"
      ? req.mode
      : findQmailSend(layout.root)
        ? "live"
        : "stopped";
  const summary = await createPlan(layout, req.filter, {
    stateDir: env.stateDir,
    queueId: queueIdentity(layout.root, env.hostname),
    mode,
    quarantine: req.quarantine ?? true,
    reason: req.reason ?? "",
    who: req.who ?? "",
    ...(req.ttlMs !== undefined ? { ttlMs: req.ttlMs } : {}),
    ...(req.sampleSize !== undefined ? { sampleSize: req.sampleSize } : {}),
    ...(onMessage ? { onMessage } : {}),
  });
  env.audit?.append({
    event: "purge-preview",
    who: summary.who,
    reason: summary.reason,
    planId: summary.planId,
    queue: summary.queueId,
    filter: summary.filter,
    mode: summary.mode,
    quarantine: summary.quarantine,
    matched: summary.matched,
    bytes: summary.bytes,
    todo: summary.todo,
  });
  return summary;
}

/**
 * Step two: runs exactly the plan `planId`. Throws before changing anything when the plan is
 * unknown, expired, for another queue, or already running, when another change holds the
 * queue (AgentLockBusyError), or when quarantine is refused; otherwise resolves with the
 * report, every message's outcome having gone to onOutcome first.
 */
export async function executePurge(
  env: PurgeEnvironment,
  planId: string,
  req: ExecuteRequest,
  onOutcome: (outcome: MessageOutcome) => void | Promise<void>,
): Promise<PurgeReport> {
  const layout = detectLayout(env.queueRoot);
  const lock = acquireAgentLock(env.stateDir, layout.root, `purge plan ${planId}`);
  try {
    const plan = claimPlan(env.stateDir, planId, queueIdentity(layout.root, env.hostname));
    const { header } = plan;
    let quarantine: Quarantine | undefined;
    try {
      assertConsistentSplit(layout);
      if (header.quarantine) {
        quarantine = quarantineOf(env);
        quarantine.expire(env.quarantineRetentionDays ?? 14);
        quarantine.prepare(layout.root);
      }
    } catch (error) {
      plan.discard();
      throw error;
    }
    const reason = req.reason || header.reason;
    env.audit?.append({
      event: "purge-execute",
      who: req.who ?? header.who,
      reason,
      planId,
      queue: header.queueId,
      filter: header.filter,
      mode: header.mode,
      quarantine: header.quarantine,
      matched: header.matched,
    });
    const counts: Record<OutcomeKind, number> = {
      neutralized: 0,
      retired: 0,
      removed: 0,
      skipped_changed: 0,
      gone: 0,
      failed: 0,
    };
    const run: PurgeRun = {
      layout,
      routing: loadRouting(qmailHomeOf(layout)),
      quarantine,
      planId,
      reason,
      emit: async (outcome) => {
        counts[outcome.outcome]++;
        env.audit?.append({ event: "purge-message", planId, ...outcome }, false);
        await onOutcome(outcome);
      },
    };
    const report: PurgeReport = {
      planId,
      mode: header.mode,
      purged: 0,
      retired: 0,
      skippedChanged: 0,
      gone: 0,
      failed: 0,
      awaitingRetirement: 0,
      notProcessed: 0,
      downtimeMs: 0,
      removalMs: 0,
      qmailSendRestarted: false,
      notes: [],
    };
    if (header.mode === "live") {
      const live = await purgeLive(run, plan.messages(), req);
      report.awaitingRetirement = live.awaitingRetirement;
      report.notes = live.notes;
    } else {
      const stopped = await purgeStopped(run, () => plan.messages(), {
        stateDir: env.stateDir,
        qmailSend: env.qmailSend,
      });
      Object.assign(report, {
        notProcessed: stopped.notProcessed,
        downtimeMs: stopped.downtimeMs,
        removalMs: stopped.removalMs,
        qmailSendRestarted: stopped.restarted,
        notes: stopped.notes,
        ...(stopped.error ? { error: stopped.error } : {}),
      });
    }
    report.purged = counts.neutralized + counts.removed;
    report.retired = counts.retired;
    report.skippedChanged = counts.skipped_changed;
    report.gone = counts.gone;
    report.failed = counts.failed;
    env.audit?.append({ event: "purge-report", who: req.who ?? header.who, reason, ...report });
    plan.discard();
    return report;
  } finally {
    lock.release();
  }
}

/** At agent start: restart qmail-send after purges a dead agent left midway, and report them (audited). */
export async function recoverPurges(env: PurgeEnvironment): Promise<RecoveryReport[]> {
  const reports = await recoverInterruptedPurges(env.stateDir, env.qmailSend);
  for (const r of reports) env.audit?.append({ event: "purge-recovery", ...r });
  return reports;
}

export function listQuarantine(env: PurgeEnvironment): Generator<QuarantineEntry> {
  return quarantineOf(env).list();
}

/** Re-injects quarantined messages through qmail-queue, under the queue's lock; each result audited. */
export async function restoreQuarantined(
  env: PurgeEnvironment,
  quarantineIds: string[],
  opts: { allRecipients?: boolean; who?: string; reason?: string },
  onResult?: (result: RestoreResult) => void | Promise<void>,
): Promise<RestoreResult[]> {
  const quarantine = quarantineOf(env);
  return withAgentLock(env.stateDir, env.queueRoot, "restore from quarantine", async () => {
    const results: RestoreResult[] = [];
    for (const id of quarantineIds) {
      const result = await quarantine.restore(id, {
        qmailQueue: env.qmailSend.qmailQueue,
        allRecipients: opts.allRecipients ?? false,
      });
      env.audit?.append({
        event: "quarantine-restore",
        who: opts.who ?? "",
        reason: opts.reason ?? "",
        ...result,
      });
      results.push(result);
      await onResult?.(result);
    }
    return results;
  });
}
