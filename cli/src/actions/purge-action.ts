// A deletion across the fleet (qmHandle -d/-f/-S/.../-D): the preview on every host (each agent
// makes a plan), and with --yes the execution of exactly those plans, outcomes streamed as they
// happen, then each host's report and the totals. Without --yes nothing is deleted: the preview
// ends with the command that deletes (or, with --plan-file, executes the saved plans).

import type { HostOutcome } from "@qmfleet/controller";
import {
  type ExecuteSettings,
  fleetExecutePurge,
  fleetPreviewPurge,
  type HostPurge,
  type InventoryHost,
  loadPlans,
  savePlans,
} from "@qmfleet/controller";
import type { PlanSummary, PreviewPurgeRequest } from "@qmfleet/proto";
import { emit } from "../output.js";
import {
  executeView,
  type PreviewContext,
  type PurgeFormat,
  previewJson,
  previewNdjson,
  previewTable,
} from "../views/purge-view.js";
import type { Action, ActionContext, ActionResult } from "./action.js";
import { fanOutOf, hostReporter, hostsResult } from "./host-report.js";

export interface PurgeOptions {
  /** Each host's preview request (with -d HOST:ID, hosts are asked for different ids). */
  request: (host: InventoryHost) => PreviewPurgeRequest;
  /** The selection as the operator reads it back. */
  filter: string;
  /** Execute the plans just made. */
  yes: boolean;
  execute: ExecuteSettings;
  canary: number;
  /** Save the plans here instead of executing them. */
  planFile?: string;
  /** What to run to execute this preview. */
  command: string;
}

function format(ctx: ActionContext): PurgeFormat {
  // The program refuses csv for a purge before any host is asked.
  return ctx.format === "csv" ? "table" : ctx.format;
}

function reportHost(ctx: ActionContext, r: HostPurge): void {
  // A host whose preview failed was reported then: its plan-less result says nothing new.
  if (r.state !== "ok" && r.plan === undefined) return;
  if (r.state !== "ok") ctx.stderr.write(`qmfleet: ${r.host.name}: ${r.state}: ${r.error ?? ""}\n`);
  else if (ctx.stderr.isTTY) ctx.stderr.write(`${r.host.name}: purge done\n`);
}

/** Executes each ok preview's plan on its host; the view streams the outcomes. */
async function executePlans(
  ctx: ActionContext,
  previews: readonly HostOutcome<PlanSummary>[],
  filter: string,
  settings: ExecuteSettings,
  canary: number,
): Promise<ActionResult> {
  const view = executeView(format(ctx), filter);
  await emit(ctx, view.begin());
  const result = await fleetExecutePurge(previews, ctx.clients, settings, {
    ...fanOutOf(ctx),
    canary,
    onOutcome: (host, outcome) => emit(ctx, view.outcome(host.name, outcome)),
    onHost: (r) => reportHost(ctx, r),
  });
  await emit(ctx, view.end(result));
  return { hostsNotOk: result.notOk };
}

export function purgeAction(options: PurgeOptions): Action {
  return async (ctx) => {
    const preview = await fleetPreviewPurge(ctx.hosts, ctx.clients, options.request, {
      ...fanOutOf(ctx),
      onHost: hostReporter(ctx),
    });
    if (options.planFile) await savePlans(options.planFile, options.filter, preview.hosts);
    const shown: PreviewContext = {
      filter: options.filter,
      now: Math.floor(Date.now() / 1000),
      ...(options.yes ? {} : { command: options.command }),
      ...(options.planFile ? { planFile: options.planFile } : {}),
    };
    if (!options.yes) {
      const render = { table: previewTable, json: previewJson, ndjson: previewNdjson }[format(ctx)];
      await emit(ctx, render(preview, shown));
      return hostsResult(preview.hosts);
    }
    // JSON and NDJSON are one result: the execution's, whose hosts carry their plans.
    if (format(ctx) === "table") await emit(ctx, previewTable(preview, shown));
    return executePlans(ctx, preview.hosts, options.filter, options.execute, options.canary);
  };
}

/** --plan-file FILE --yes: executes exactly the plans a preview saved. */
export function planFileAction(file: string, settings: ExecuteSettings, canary: number): Action {
  return async (ctx) => {
    const { filter, previews } = await loadPlans(file, ctx.hosts);
    return executePlans(ctx, previews, filter, settings, canary);
  };
}
