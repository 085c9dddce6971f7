// What `qmfleet-agent local` changes, straight on this host's queue through the engine (no
// gRPC): the deletion a selection asks for (previewed unless --yes), -t retry sooner, -a send
// now, and the quarantine (--quarantine lists it, --restore re-injects). Every change goes to the
// same audit log as the agent's, with the local user as who and --reason as why, under the same
// per-queue lock, so `local` and `serve` on one host never change the queue at once.

import { shellCommand } from "@qmfleet/proto/messages";
import { localIdentity } from "../engine/audit.js";
import type { DetectedLayout } from "../engine/layout.js";
import type { Filter } from "../engine/model.js";
import type { PlanSummary, PurgeMode } from "../engine/plan.js";
import {
  executePurge,
  listQuarantine,
  type PurgeEnvironment,
  type PurgeReport,
  previewPurge,
  recoverPurges,
  restoreQuarantined,
} from "../engine/purge.js";
import type { MessageOutcome } from "../engine/purge-target.js";
import { findQmailSend } from "../engine/qmail-send.js";
import { retrySooner, sendNow } from "../engine/retry.js";
import { LocalUsageError, type Output } from "./local-output.js";
import { printable } from "./local-views.js";

/** Exit status when a purge or a restore left something undone (documented in --help). */
export const EXIT_CHANGE_INCOMPLETE = 4;

/** The flags that shape a change. */
export interface ChangeFlags {
  yes?: boolean;
  stopped?: boolean;
  noQuarantine?: boolean;
  /** false with --no-flush. */
  flush?: boolean;
  reason?: string;
  retireTimeout?: string;
  allRecipients?: boolean;
}

export interface ChangeContext {
  env: PurgeEnvironment;
  out: Output;
  json: boolean;
  flags: ChangeFlags;
}

/** In words: the mode a purge will use, and what it does to qmail-send. */
export function modeText(queueRoot: string, stopped: boolean): { mode: PurgeMode; text: string } {
  const holder = findQmailSend(queueRoot);
  if (stopped) {
    return {
      mode: "stopped",
      text: holder
        ? `stopped: qmail-send (pid ${holder.pid}) is stopped for the removal and started again`
        : "stopped: qmail-send is not running, and is not started",
    };
  }
  return holder
    ? {
        mode: "live",
        text: `live: qmail-send (pid ${holder.pid}) keeps running, no downtime; each message is neutralized at once and retired at qmail-send's next pass over it`,
      }
    : { mode: "stopped", text: "stopped: qmail-send is not running, and is not started" };
}

/**
 * The command that would run the previewed deletion: the same arguments without --dry-run, with
 * --yes, and with --reason (a placeholder to fill in when none was given).
 */
export function executeCommand(argv: readonly string[]): string {
  const args = argv.filter((a) => a !== "--dry-run" && a !== "--yes");
  const hasReason = args.some((a) => a === "--reason" || a.startsWith("--reason="));
  return `${shellCommand(["qmfleet-agent", ...args, "--yes"])}${hasReason ? "" : " --reason '<why>'"}`;
}

function requireReason(flags: ChangeFlags, what: string): string {
  const reason = flags.reason?.trim() ?? "";
  if (reason === "") {
    throw new LocalUsageError(
      `${what} needs --reason TEXT: why, for the audit log (e.g. --reason 'bounce storm INC-1234'). Nothing was changed.`,
    );
  }
  return reason;
}

function retireTimeoutMs(flags: ChangeFlags): number | undefined {
  if (flags.retireTimeout === undefined) return undefined;
  const seconds = Number(flags.retireTimeout);
  if (!(Number.isSafeInteger(seconds) && seconds > 0)) {
    throw new LocalUsageError(`--retire-timeout "${flags.retireTimeout}": expected a number of seconds`);
  }
  return seconds * 1000;
}

/** Checks the flags of a deletion with --yes before anything is read or changed. */
export function checkDeletionFlags(flags: ChangeFlags): void {
  requireReason(flags, "--yes");
  retireTimeoutMs(flags);
}

function qmailSendText(report: PurgeReport): string {
  if (report.mode === "live") return "qmail-send kept running: no downtime";
  if (report.qmailSendRestarted) return `qmail-send was down ${report.downtimeMs} ms and runs again`;
  if (report.error) return "qmail-send: see the error above";
  return "qmail-send was not running and was not started";
}

function outcomeLine(o: MessageOutcome): string | undefined {
  const touched = o.touched.length > 0 ? ` (changed: ${o.touched.join(", ")})` : "";
  switch (o.outcome) {
    case "skipped_changed":
      return `  ${o.id}: skipped, it changed since the preview: ${printable(o.error ?? "")}\n`;
    case "gone":
      return `  ${o.id}: gone: ${printable(o.error ?? "")}\n`;
    case "failed":
      return `  ${o.id}: FAILED: ${printable(o.error ?? "")}${touched}\n`;
    default:
      return undefined;
  }
}

function planText(plan: PlanSummary, description: string, env: PurgeEnvironment): string {
  const keep = plan.quarantine
    ? "each kept in quarantine first (--restore brings it back)"
    : "deleted for good (--no-quarantine)";
  const skipped =
    plan.beingWrittenSkipped > 0
      ? `; ${plan.beingWrittenSkipped} still being written by qmail-queue, never touched`
      : "";
  return (
    `Plan ${plan.planId}: ${plan.matched} messages (${plan.bytes} bytes) matching ${description}${skipped}\n` +
    `  mode ${plan.mode}; ${keep}; audit log ${env.audit?.file ?? "none"}\n`
  );
}

function reportText(r: PurgeReport): string {
  const lines = [
    r.mode === "live"
      ? `Purged ${r.purged} (neutralized: qmail-send never delivers them), ${r.retired} retired (gone from the queue), ${r.awaitingRetirement} awaiting retirement`
      : `Purged ${r.purged} (removed)${r.notProcessed > 0 ? `, ${r.notProcessed} not processed` : ""}`,
    `  ${r.skippedChanged} skipped (changed since the preview), ${r.gone} gone (delivered meanwhile), ${r.failed} failed`,
    `  ${qmailSendText(r)}`,
    ...r.notes.map((n) => `  note: ${n}`),
    ...(r.error ? [`  error: ${r.error}`] : []),
  ];
  return `${lines.map(printable).join("\n")}\n`;
}

/** The whole report as JSON fields, the counts at the top level. */
function reportJson(r: PurgeReport): string {
  const { planId: _planId, ...rest } = r;
  return JSON.stringify(rest).slice(1, -1);
}

/**
 * --yes: preview (a plan of exactly what matches now), then execute that plan; the outcomes
 * stream out as they happen (JSON: one document with the counts at the top level).
 */
export async function executeDeletion(
  ctx: ChangeContext,
  filter: Filter,
  description: string,
): Promise<void> {
  const { env, out, json, flags } = ctx;
  const reason = requireReason(flags, "--yes");
  const who = localIdentity();
  // A purge a killed process left midway may have left qmail-send stopped: first things first.
  for (const r of await recoverPurges(env)) {
    process.stderr.write(
      `qmfleet-agent: recovered interrupted plan ${r.planId} (pid ${r.agentPid}, ${r.startedAt}): ${r.qmailSend}\n`,
    );
  }
  const plan = await previewPurge(env, {
    filter,
    mode: flags.stopped ? "stopped" : "auto",
    quarantine: !flags.noQuarantine,
    reason,
    who,
    sampleSize: 0,
  });
  if (json) {
    const head = {
      planId: plan.planId,
      filter: description,
      matched: plan.matched,
      bytes: plan.bytes,
      todo: plan.todo,
      beingWrittenSkipped: plan.beingWrittenSkipped,
      quarantine: plan.quarantine,
    };
    await out.write(`${JSON.stringify(head).slice(0, -1)},"outcomes":[`);
  } else {
    await out.write(planText(plan, description, env));
  }
  let written = 0;
  const timeout = retireTimeoutMs(flags);
  const report = await executePurge(
    env,
    plan.planId,
    {
      reason,
      who,
      noFlush: flags.flush === false,
      ...(timeout !== undefined ? { retireTimeoutMs: timeout } : {}),
    },
    async (outcome) => {
      if (json) {
        await out.write(`${written++ > 0 ? "," : ""}${JSON.stringify(outcome)}`);
        return;
      }
      const line = outcomeLine(outcome);
      if (line) await out.write(line);
    },
  );
  await out.write(json ? `],${reportJson(report)}}\n` : reportText(report));
  if (report.failed > 0 || report.error) process.exitCode = EXIT_CHANGE_INCOMPLETE;
}

/** -t: matches with remote recipients to deliver get their birth time set to now, then ALRM. */
export async function retryAction(ctx: ChangeContext, layout: DetectedLayout, filter: Filter): Promise<void> {
  const { env, out, json, flags } = ctx;
  const result = await retrySooner(layout, filter, { stateDir: env.stateDir });
  env.audit?.append({
    event: "retry-sooner",
    who: localIdentity(),
    reason: flags.reason ?? "",
    filter,
    ...result,
  });
  if (json) {
    await out.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const signal = result.signaled
    ? `ALRM sent to qmail-send (pid ${result.pid}): it retries them now`
    : result.changed > 0
      ? "qmail-send is not running: they are retried when it starts"
      : "nothing to retry, no ALRM sent";
  await out.write(
    `${result.matched} messages matched; ${result.changed} with remote recipients to deliver made due now (birth time set to now, which restarts their queue lifetime)\n${signal}\n`,
  );
}

/** -a: ALRM to qmail-send. */
export async function sendNowAction(ctx: ChangeContext, layout: DetectedLayout): Promise<void> {
  const { env, out, json, flags } = ctx;
  const result = sendNow(layout);
  env.audit?.append({ event: "send-now", who: localIdentity(), reason: flags.reason ?? "", ...result });
  if (json) await out.write(`${JSON.stringify(result)}\n`);
  else
    await out.write(
      result.signaled
        ? `ALRM sent to qmail-send (pid ${result.pid}): every queued message is retried now\n`
        : "qmail-send is not running: nothing was signalled\n",
    );
}

/** --quarantine: what purges kept, oldest first. */
export async function quarantineList(ctx: ChangeContext): Promise<void> {
  const { env, out, json } = ctx;
  let count = 0;
  if (json) await out.write('{"entries":[');
  for (const e of listQuarantine(env)) {
    if (json) {
      await out.write(`${count > 0 ? "," : ""}${JSON.stringify(e)}`);
    } else {
      const when = new Date(e.quarantinedAt * 1000).toISOString();
      const to = e.recipients.map((r) => `${r.address}${r.done ? " (done)" : ""}`).join(", ");
      await out.write(
        printable(
          `${e.quarantineId}\n  was ${e.originalId}, ${e.size} bytes, quarantined ${when} by plan ${e.planId}: ${e.reason}\n` +
            `  Return-path: <${e.sender}>\n  To: ${to}\n  Subject: ${e.subject}\n`,
        ),
      );
    }
    count++;
  }
  if (json) await out.write(`],"count":${count}}\n`);
  else if (count === 0) await out.write("the quarantine is empty\n");
}

/** --restore: re-injects quarantined messages through qmail-queue. */
export async function restoreAction(ctx: ChangeContext, ids: string[]): Promise<void> {
  const { env, out, json, flags } = ctx;
  let failed = 0;
  if (json) await out.write('{"restored":[');
  let written = 0;
  await restoreQuarantined(
    env,
    ids,
    { allRecipients: flags.allRecipients ?? false, who: localIdentity(), reason: flags.reason ?? "" },
    async (r) => {
      if (!r.ok) failed++;
      if (json) await out.write(`${written++ > 0 ? "," : ""}${JSON.stringify(r)}`);
      else
        await out.write(
          r.ok
            ? `${r.quarantineId}: restored\n`
            : `${r.quarantineId}: NOT restored: ${printable(r.error ?? "")}\n`,
        );
    },
  );
  if (json) await out.write(`],"failed":${failed}}\n`);
  if (failed > 0) process.exitCode = EXIT_CHANGE_INCOMPLETE;
}
