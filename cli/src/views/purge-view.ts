// What a fleet purge shows: the preview (per host: state, mode, what matched, plan id; a sample;
// the command that executes it), then, with --yes, the outcomes as they happen and each host's
// report with the fleet's totals. Tables for people; one JSON document, or NDJSON records, for
// programs. The JSON of an executed purge streams its outcomes first (a storm is thousands of
// them) and the hosts' reports and the totals, known only at the end, after them.

import type { FleetPreview, FleetPurge, HostPurge, PurgeTotals } from "@qmfleet/controller";
import { type MessageOutcome, Outcome, type PlanSummary, PurgeMode } from "@qmfleet/proto";
import { type Column, renderJson, renderNdjsonLine, renderTable } from "../render.js";
import { oneLine, printable } from "../text-width.js";
import { messageRecord } from "./messages-view.js";

export type PurgeFormat = "table" | "json" | "ndjson";

export function modeName(mode: PurgeMode): string {
  if (mode === PurgeMode.PURGE_MODE_LIVE) return "live";
  if (mode === PurgeMode.PURGE_MODE_STOPPED) return "stopped";
  return "auto";
}

const OUTCOMES: Record<number, string> = {
  [Outcome.OUTCOME_NEUTRALIZED]: "neutralized",
  [Outcome.OUTCOME_RETIRED]: "retired",
  [Outcome.OUTCOME_REMOVED]: "removed",
  [Outcome.OUTCOME_SKIPPED_CHANGED]: "skipped_changed",
  [Outcome.OUTCOME_GONE]: "gone",
  [Outcome.OUTCOME_FAILED]: "failed",
};

export function outcomeName(outcome: Outcome): string {
  return OUTCOMES[outcome] ?? "unknown";
}

/** What the preview prints besides the hosts: the selection and how to execute it. */
export interface PreviewContext {
  filter: string;
  /** The command that executes this preview (or its plans); absent when it is executed now (--yes). */
  command?: string;
  /** The plans were saved here (--plan-file). */
  planFile?: string;
  now: number;
}

function planRecord(plan: PlanSummary) {
  return {
    planId: plan.planId,
    expiresUnix: plan.expiresUnix,
    queueId: plan.queueId,
    mode: modeName(plan.mode),
    matched: plan.matched,
    bytes: plan.bytes,
    todo: plan.todo,
    beingWrittenSkipped: plan.beingWrittenSkipped,
    quarantine: plan.quarantine,
  };
}

const PREVIEW_COLUMNS: Column[] = [
  { title: "host", align: "left" },
  { title: "state", align: "left" },
  { title: "mode", align: "left" },
  { title: "matched", align: "right" },
  { title: "bytes", align: "right" },
  { title: "todo", align: "right" },
  { title: "plan", align: "left" },
];

function clock(unix: number): string {
  return new Date(unix * 1000).toISOString().slice(11, 19);
}

export function previewTable(preview: FleetPreview, ctx: PreviewContext): string {
  const rows = preview.hosts.map((o) =>
    o.state === "ok" && o.value
      ? [
          o.host.name,
          "ok",
          modeName(o.value.mode),
          String(o.value.matched),
          String(o.value.bytes),
          String(o.value.todo),
          `${o.value.planId} (until ${clock(o.value.expiresUnix)}Z)`,
        ]
      : [o.host.name, o.state, "", "", "", "", ""],
  );
  const problems = preview.hosts
    .filter((o) => o.state !== "ok")
    .map((o) => `  ${o.host.name}: ${o.state}: ${oneLine(o.error ?? "")}\n`)
    .join("");
  const sample = preview.hosts
    .flatMap((o) =>
      o.state === "ok" && o.value ? o.value.sample.map((m) => ({ host: o.host.name, m })) : [],
    )
    .map(({ host, m }) => {
      const r = messageRecord(host, m, ctx.now);
      const to = r.recipients[0]?.address ?? "";
      return `  ${host}:${r.id}  <${oneLine(r.sender)}>  ${oneLine(to)}  ${oneLine(r.subject)}\n`;
    })
    .join("");
  const live = preview.hosts.some((o) => o.value?.mode === PurgeMode.PURGE_MODE_LIVE);
  const stopped = preview.hosts.some((o) => o.value?.mode === PurgeMode.PURGE_MODE_STOPPED);
  const modes = [
    live
      ? "  live: qmail-send keeps running (no downtime); each message is neutralized at once, retired at qmail-send's next pass\n"
      : "",
    stopped
      ? "  stopped: qmail-send, where it runs, is stopped for the removal and started again; where it does not run it is not started\n"
      : "",
  ].join("");
  const answered = preview.hosts.filter((o) => o.state === "ok").length;
  const how =
    ctx.command === undefined
      ? preview.totals.matched > 0
        ? "Executing exactly these plans now (each message re-checked at the moment of change)...\n"
        : "Nothing to execute.\n"
      : ctx.planFile
        ? `Nothing was deleted. The plans are saved in ${ctx.planFile}; to execute exactly them (before they expire):\n  ${ctx.command}\n`
        : `Nothing was deleted. To delete what matches then (previewed again, each message re-checked):\n  ${ctx.command}\n`;
  return (
    `Purge preview: messages matching ${printable(ctx.filter)}\n` +
    renderTable(PREVIEW_COLUMNS, rows) +
    problems +
    (sample ? `Sample:\n${sample}` : "") +
    (modes ? `Modes:\n${modes}` : "") +
    `Would delete ${preview.totals.matched} messages (${preview.totals.bytes} bytes); ${answered}/${preview.hosts.length} hosts previewed.\n` +
    how
  );
}

export function previewJson(preview: FleetPreview, ctx: PreviewContext): string {
  return renderJson({
    preview: true,
    filter: ctx.filter,
    hosts: preview.hosts.map((o) => ({
      name: o.host.name,
      state: o.state,
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(o.value
        ? {
            ...planRecord(o.value),
            sample: o.value.sample.map((m) => messageRecord(o.host.name, m, ctx.now)),
          }
        : {}),
    })),
    matched: preview.totals.matched,
    bytes: preview.totals.bytes,
    todo: preview.totals.todo,
    ...(ctx.command !== undefined ? { command: ctx.command } : {}),
    ...(ctx.planFile ? { planFile: ctx.planFile } : {}),
  });
}

export function previewNdjson(preview: FleetPreview, ctx: PreviewContext): string {
  return (
    preview.hosts
      .map((o) =>
        renderNdjsonLine({
          kind: "host",
          name: o.host.name,
          state: o.state,
          ...(o.error !== undefined ? { error: o.error } : {}),
          ...(o.value ? planRecord(o.value) : {}),
        }),
      )
      .join("") +
    renderNdjsonLine({
      kind: "total",
      preview: true,
      filter: ctx.filter,
      ...preview.totals,
      ...(ctx.command !== undefined ? { command: ctx.command } : {}),
      ...(ctx.planFile ? { planFile: ctx.planFile } : {}),
    })
  );
}

function outcomeRecord(host: string, o: MessageOutcome) {
  return {
    host,
    id: o.ref?.id ?? "",
    fingerprint: o.ref?.fingerprint ?? "",
    outcome: outcomeName(o.outcome),
    ...(o.error ? { error: o.error } : {}),
    ...(o.touched.length > 0 ? { touched: o.touched } : {}),
    ...(o.quarantineId ? { quarantineId: o.quarantineId } : {}),
  };
}

function hostPurgeRecord(r: HostPurge) {
  const report = r.report;
  return {
    name: r.host.name,
    state: r.state,
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.plan ? { planId: r.plan.planId, matched: r.plan.matched, bytes: r.plan.bytes } : {}),
    mode: modeName(report?.mode ?? r.plan?.mode ?? PurgeMode.PURGE_MODE_UNSPECIFIED),
    ...(r.nothingToDo ? { nothingToDo: true } : {}),
    purged: report?.purged ?? 0,
    retired: report?.retired ?? 0,
    skippedChanged: report?.skippedChanged ?? 0,
    gone: report?.gone ?? 0,
    failed: report?.failed ?? 0,
    awaitingRetirement: report?.awaitingRetirement ?? 0,
    notProcessed: report?.notProcessed ?? 0,
    downtimeMs: report?.downtimeMs ?? 0,
    qmailSendRestarted: report?.qmailSendRestarted ?? false,
    notes: report?.notes ?? [],
  };
}

/** The one mode of the fleet's purge, or "mixed". */
function fleetMode(result: FleetPurge): string {
  const modes = new Set(result.hosts.filter((r) => r.report).map((r) => modeName(r.report?.mode ?? 0)));
  if (modes.size === 0) return "none";
  return modes.size === 1 ? ([...modes][0] as string) : "mixed";
}

/** An executed purge written piece by piece: begin, each outcome, then the reports. */
export interface ExecuteView {
  begin(): string;
  outcome(host: string, o: MessageOutcome): string;
  end(result: FleetPurge): string;
}

function totalsLine(t: PurgeTotals): string {
  return (
    `purged ${t.purged}, retired ${t.retired}, awaiting retirement ${t.awaitingRetirement}, ` +
    `skipped (changed) ${t.skippedChanged}, gone ${t.gone}, failed ${t.failed}` +
    (t.notProcessed > 0 ? `, not processed ${t.notProcessed}` : "")
  );
}

function qmailSendCell(r: HostPurge): string {
  const report = r.report;
  if (!report) return "";
  if (report.mode === PurgeMode.PURGE_MODE_LIVE) return "kept running";
  if (report.qmailSendRestarted) return `down ${report.downtimeMs} ms, restarted`;
  if (report.error) return "see error";
  return "not running, not started";
}

const REPORT_COLUMNS: Column[] = [
  { title: "host", align: "left" },
  { title: "state", align: "left" },
  { title: "mode", align: "left" },
  { title: "purged", align: "right" },
  { title: "retired", align: "right" },
  { title: "waiting", align: "right" },
  { title: "skipped", align: "right" },
  { title: "gone", align: "right" },
  { title: "failed", align: "right" },
  { title: "qmail-send", align: "left" },
];

function tableExecuteView(): ExecuteView {
  return {
    begin: () => "",
    // Only what the operator must look at: the counts tell the rest.
    outcome: (host, o) => {
      const name = outcomeName(o.outcome);
      if (name !== "failed" && name !== "skipped_changed" && name !== "gone") return "";
      return `  ${host}:${o.ref?.id ?? ""}: ${name}: ${oneLine(o.error ?? "")}${
        o.touched.length > 0 ? ` (changed: ${o.touched.join(", ")})` : ""
      }\n`;
    },
    end: (result) => {
      const rows = result.hosts.map((r) => {
        const rec = hostPurgeRecord(r);
        return r.report
          ? [
              rec.name,
              rec.state,
              rec.mode,
              String(rec.purged),
              String(rec.retired),
              String(rec.awaitingRetirement),
              String(rec.skippedChanged),
              String(rec.gone),
              String(rec.failed),
              qmailSendCell(r),
            ]
          : [rec.name, rec.state, r.nothingToDo ? "nothing matched" : "", "", "", "", "", "", "", ""];
      });
      const notes = result.hosts
        .flatMap((r) => [
          ...(r.error ? [`  ${r.host.name}: ${r.state}: ${oneLine(r.error)}\n`] : []),
          ...(r.report?.notes ?? []).map((n) => `  ${r.host.name}: note: ${oneLine(n)}\n`),
        ])
        .join("");
      const ok = result.hosts.filter((r) => r.state === "ok").length;
      return (
        `Purge report\n${renderTable(REPORT_COLUMNS, rows)}${notes}` +
        `Total: ${totalsLine(result.totals)}; ${ok}/${result.hosts.length} hosts ok.\n`
      );
    },
  };
}

function jsonExecuteView(filter: string): ExecuteView {
  let first = true;
  return {
    begin: () => `{"filter":${JSON.stringify(filter)},"outcomes":[`,
    outcome: (host, o) => {
      const text = `${first ? "\n" : ",\n"}${JSON.stringify(outcomeRecord(host, o))}`;
      first = false;
      return text;
    },
    end: (result) =>
      `${first ? "" : "\n"}],\n"hosts":${JSON.stringify(result.hosts.map(hostPurgeRecord))},\n` +
      `"mode":${JSON.stringify(fleetMode(result))},` +
      `${JSON.stringify(result.totals).slice(1, -1)},"notOk":${result.notOk}}\n`,
  };
}

function ndjsonExecuteView(filter: string): ExecuteView {
  return {
    begin: () => "",
    outcome: (host, o) => renderNdjsonLine({ kind: "outcome", ...outcomeRecord(host, o) }),
    end: (result) =>
      result.hosts.map((r) => renderNdjsonLine({ kind: "host", ...hostPurgeRecord(r) })).join("") +
      renderNdjsonLine({
        kind: "total",
        filter,
        mode: fleetMode(result),
        ...result.totals,
        hosts: result.hosts.length,
        notOk: result.notOk,
      }),
  };
}

export function executeView(format: PurgeFormat, filter: string): ExecuteView {
  switch (format) {
    case "table":
      return tableExecuteView();
    case "json":
      return jsonExecuteView(filter);
    case "ndjson":
      return ndjsonExecuteView(filter);
  }
}
