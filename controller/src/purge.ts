// A fleet purge, in the two steps every destructive operation takes (architecture.md):
// 1. preview on every targeted host: each agent scans with the filter and writes a plan (id,
//    totals, a sample); nothing changes;
// 2. execute exactly those plans, each on the host that made it: the agent re-verifies every
//    message at the moment of change and never touches more than its plan. The controller never
//    selects again: a host whose preview failed is not executed, and a host whose plan matched
//    nothing has nothing to execute.
// Outcomes stream as they happen; every host ends in a named state. With a canary, the first
// hosts with something to purge are executed alone first, and the rest only if every one of
// them purged cleanly.

import type {
  ExecutePurgeRequest,
  MessageOutcome,
  MessageSummary,
  PlanSummary,
  PreviewPurgeRequest,
  PurgeReport,
} from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome, type HostState } from "./fanout.js";
import { serverStream, streamFanOut } from "./fleet-stream.js";
import type { InventoryHost } from "./inventory.js";
import { sumCounts } from "./sum-counts.js";

/** One host's plan, as its preview returned it. */
export interface HostPlan {
  host: InventoryHost;
  plan: PlanSummary;
}

export interface FleetPreview {
  /** One outcome per targeted host, in the order the hosts were given. */
  hosts: HostOutcome<PlanSummary>[];
  /** Sums over the hosts that previewed. */
  totals: { matched: number; bytes: number; todo: number };
  notOk: number;
}

export interface FleetPreviewOptions extends FanOutOptions {
  /** With include_messages: every planned message as it arrives. */
  onMessage?: (host: InventoryHost, message: MessageSummary) => void | Promise<void>;
  onHost?: (outcome: HostOutcome<PlanSummary>) => void;
}

/** Step one on every host. `request` is per host: `-d HOST:ID` selects other ids on each. */
export async function fleetPreviewPurge(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  request: (host: InventoryHost) => PreviewPurgeRequest,
  options: FleetPreviewOptions,
): Promise<FleetPreview> {
  const { fanOut: fanOutOptions, idleMs } = streamFanOut(options);
  const byName = new Map<string, HostOutcome<PlanSummary>>();
  const run = fanOut(
    hosts,
    clients,
    async (client, ctx) => {
      const responses = serverStream(
        (callOptions, metadata) => client.previewPurge(request(ctx.host), metadata, callOptions),
        { ...ctx, idleMs },
      );
      let plan: PlanSummary | undefined;
      for await (const response of responses) {
        if (response.message?.message) await options.onMessage?.(ctx.host, response.message.message);
        if (response.summary) plan = response.summary;
      }
      if (!plan) throw new Error("the agent ended PreviewPurge without a plan");
      return plan;
    },
    fanOutOptions,
  );
  for await (const outcome of run) {
    byName.set(outcome.host.name, outcome);
    options.onHost?.(outcome);
  }
  const ordered = hosts.map((h) => byName.get(h.name) as HostOutcome<PlanSummary>);
  const totals = { matched: 0, bytes: 0, todo: 0 };
  for (const o of ordered) {
    if (o.state !== "ok" || !o.value) continue;
    totals.matched += o.value.matched;
    totals.bytes += o.value.bytes;
    totals.todo += o.value.todo;
  }
  return { hosts: ordered, totals, notOk: ordered.filter((o) => o.state !== "ok").length };
}

/**
 * How a host's purge ended. The states of fanOut, and skipped: not executed because a canary
 * host did not purge cleanly (or its preview did not succeed). A host that executed but left
 * messages failed, or whose qmail-send could not be stopped or started, is failed, its report
 * attached.
 */
export type PurgeHostState = HostState | "skipped";

export interface HostPurge {
  host: InventoryHost;
  state: PurgeHostState;
  /** The plan executed (absent when the preview failed). */
  plan?: PlanSummary;
  /** The agent's report (absent when nothing was executed or the call failed). */
  report?: PurgeReport;
  /** The plan matched nothing: there was nothing to execute. */
  nothingToDo?: boolean;
  error?: string;
  elapsedMs: number;
}

export interface PurgeTotals {
  purged: number;
  retired: number;
  skippedChanged: number;
  gone: number;
  failed: number;
  awaitingRetirement: number;
  notProcessed: number;
}

export interface FleetPurge {
  /** One per host, in the order given. */
  hosts: HostPurge[];
  totals: PurgeTotals;
  notOk: number;
}

export interface FleetExecuteOptions extends FanOutOptions {
  /** Execute on this many hosts first (those with something to purge), the rest only if all of them end ok. */
  canary?: number;
  onOutcome?: (host: InventoryHost, outcome: MessageOutcome) => void | Promise<void>;
  onHost?: (result: HostPurge) => void;
}

/** What every execution is asked with; the plan id is each host's own. */
export type ExecuteSettings = Omit<ExecutePurgeRequest, "planId">;

const TOTAL_KEYS: readonly (keyof PurgeTotals)[] = [
  "purged",
  "retired",
  "skippedChanged",
  "gone",
  "failed",
  "awaitingRetirement",
  "notProcessed",
];

export function sumReports(reports: readonly PurgeReport[]): PurgeTotals {
  return sumCounts(reports, TOTAL_KEYS);
}

/** Why a report is not clean, or undefined when every message ended as planned. */
function reportTrouble(report: PurgeReport): string | undefined {
  if (report.error) return report.error;
  if (report.failed > 0) return `${report.failed} message(s) failed (see the outcomes)`;
  return undefined;
}

async function executeOn(
  plans: readonly HostPlan[],
  clients: AgentClients,
  settings: ExecuteSettings,
  options: FleetExecuteOptions,
  done: (result: HostPurge) => void,
): Promise<void> {
  const { fanOut: fanOutOptions, idleMs } = streamFanOut(options);
  const planOf = new Map(plans.map((p) => [p.host.name, p.plan]));
  const run = fanOut(
    plans.map((p) => p.host),
    clients,
    async (client, ctx) => {
      const plan = planOf.get(ctx.host.name) as PlanSummary;
      const responses = serverStream(
        (callOptions, metadata) =>
          client.executePurge({ ...settings, planId: plan.planId }, metadata, callOptions),
        { ...ctx, idleMs },
      );
      let report: PurgeReport | undefined;
      for await (const response of responses) {
        if (response.outcome) await options.onOutcome?.(ctx.host, response.outcome);
        if (response.report) report = response.report;
      }
      if (!report) throw new Error("the agent ended ExecutePurge without a report");
      return report;
    },
    fanOutOptions,
  );
  for await (const outcome of run) {
    const plan = planOf.get(outcome.host.name);
    const report = outcome.value;
    const trouble = report ? reportTrouble(report) : undefined;
    const cancelledNote =
      outcome.state === "cancelled" || outcome.state === "timed_out"
        ? " (a purge the agent had begun runs to its end there: see its audit log)"
        : "";
    done({
      host: outcome.host,
      state: trouble ? "failed" : outcome.state,
      ...(plan ? { plan } : {}),
      ...(report ? { report } : {}),
      ...(trouble || outcome.error ? { error: `${trouble ?? outcome.error}${cancelledNote}` } : {}),
      elapsedMs: outcome.elapsedMs,
    });
  }
}

/**
 * Step two: executes each previewed plan on its host. Hosts whose preview did not end ok are
 * reported with that state and not executed.
 */
export async function fleetExecutePurge(
  previews: readonly HostOutcome<PlanSummary>[],
  clients: AgentClients,
  settings: ExecuteSettings,
  options: FleetExecuteOptions,
): Promise<FleetPurge> {
  const results = new Map<string, HostPurge>();
  const finish = (result: HostPurge) => {
    results.set(result.host.name, result);
    options.onHost?.(result);
  };
  const toRun: HostPlan[] = [];
  for (const p of previews) {
    if (p.state !== "ok" || !p.value) {
      finish({
        host: p.host,
        state: p.state,
        error: `not executed: the preview ended ${p.state}${p.error ? `: ${p.error}` : ""}`,
        elapsedMs: 0,
      });
    } else if (p.value.matched === 0) {
      // An empty plan in stopped mode would stop qmail-send for nothing.
      finish({ host: p.host, state: "ok", plan: p.value, nothingToDo: true, elapsedMs: 0 });
    } else {
      toRun.push({ host: p.host, plan: p.value });
    }
  }
  const canary = Math.max(0, Math.floor(options.canary ?? 0));
  const first = canary > 0 ? toRun.slice(0, canary) : toRun;
  const rest = canary > 0 ? toRun.slice(canary) : [];
  await executeOn(first, clients, settings, options, finish);
  const unclean = first.map((p) => results.get(p.host.name) as HostPurge).filter((r) => r.state !== "ok");
  if (unclean.length > 0) {
    const names = unclean.map((r) => `${r.host.name} (${r.state})`).join(", ");
    for (const p of rest) {
      finish({
        host: p.host,
        state: "skipped",
        plan: p.plan,
        error: `not executed: canary ${names} did not purge cleanly`,
        elapsedMs: 0,
      });
    }
  } else {
    await executeOn(rest, clients, settings, options, finish);
  }
  const ordered = previews.map((p) => results.get(p.host.name) as HostPurge);
  const reports = ordered.flatMap((r) => (r.report ? [r.report] : []));
  return {
    hosts: ordered,
    totals: sumReports(reports),
    notOk: ordered.filter((r) => r.state !== "ok").length,
  };
}
