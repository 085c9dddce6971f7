// -t (retry sooner the matched messages) and -a (ALRM: retry every message now) on every host.

import { fleetRetrySooner, fleetSendNow, type HostOutcome } from "@qmfleet/controller";
import type { Filter, RetrySoonerResponse, SendNowResponse } from "@qmfleet/proto";
import { emit } from "../output.js";
import { type Column, renderJson, renderNdjsonLine, renderTable } from "../render.js";
import type { Action, ActionContext } from "./action.js";
import { fanOutOf, hostJson, hostReporter, hostsResult } from "./host-report.js";

function render<T>(
  ctx: ActionContext,
  outcomes: HostOutcome<T>[],
  columns: Column[],
  cells: (value: T) => string[],
  fields: (value: T) => Record<string, unknown>,
): string {
  if (ctx.format === "json") {
    return renderJson({
      hosts: outcomes.map((o) => ({ ...hostJson(o), ...(o.value ? fields(o.value) : {}) })),
    });
  }
  if (ctx.format === "ndjson") {
    return outcomes
      .map((o) => renderNdjsonLine({ kind: "host", ...hostJson(o), ...(o.value ? fields(o.value) : {}) }))
      .join("");
  }
  const rows = outcomes.map((o) =>
    o.value
      ? [o.host.name, o.state, ...cells(o.value)]
      : [o.host.name, o.state, ...columns.slice(2).map(() => "")],
  );
  return renderTable(columns, rows);
}

const RETRY_COLUMNS: Column[] = [
  { title: "host", align: "left" },
  { title: "state", align: "left" },
  { title: "matched", align: "right" },
  { title: "made due now", align: "right" },
  { title: "ALRM", align: "left" },
];

export function retryAction(filter: Filter, reason: string): Action {
  return async (ctx) => {
    const outcomes = await fleetRetrySooner(
      ctx.hosts,
      ctx.clients,
      { filter, dryRun: false, reason },
      {
        ...fanOutOf(ctx),
        onHost: hostReporter(ctx),
      },
    );
    await emit(
      ctx,
      render<RetrySoonerResponse>(
        ctx,
        outcomes,
        RETRY_COLUMNS,
        (v) => [String(v.matched), String(v.changed), v.signaled ? "sent" : "not sent"],
        (v) => ({ matched: v.matched, changed: v.changed, signaled: v.signaled }),
      ),
    );
    return hostsResult(outcomes);
  };
}

const SEND_NOW_COLUMNS: Column[] = [
  { title: "host", align: "left" },
  { title: "state", align: "left" },
  { title: "ALRM", align: "left" },
];

export function sendNowAction(reason: string): Action {
  return async (ctx) => {
    const outcomes = await fleetSendNow(ctx.hosts, ctx.clients, reason, {
      ...fanOutOf(ctx),
      onHost: hostReporter(ctx),
    });
    await emit(
      ctx,
      render<SendNowResponse>(
        ctx,
        outcomes,
        SEND_NOW_COLUMNS,
        (v) => [v.signaled ? `sent to qmail-send (pid ${v.pid})` : "qmail-send is not running"],
        (v) => ({ signaled: v.signaled, pid: v.pid }),
      ),
    );
    return hostsResult(outcomes);
  };
}
