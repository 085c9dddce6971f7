// --summary: every targeted host's Summarize of the selected messages, merged.

import { fleetSummary } from "@qmfleet/controller";
import type { Filter } from "@qmfleet/proto";
import { emit } from "../output.js";
import { renderNdjsonLine } from "../render.js";
import { summaryCsv, summaryJson, summaryNdjson, summaryTable } from "../views/summary-view.js";
import type { Action } from "./action.js";
import { fanOutOf, hostJson, hostReporter, hostsResult } from "./host-report.js";

export function summaryAction(filter: Filter, top: number): Action {
  return async (ctx) => {
    const report = hostReporter(ctx);
    const summary = await fleetSummary(
      ctx.hosts,
      ctx.clients,
      { filter, top, shape: true },
      {
        ...fanOutOf(ctx),
        onHost: (outcome) => {
          report(outcome);
          if (ctx.format === "ndjson")
            ctx.stdout.write(renderNdjsonLine({ kind: "host", ...hostJson(outcome) }));
        },
      },
    );
    const render = { table: summaryTable, json: summaryJson, ndjson: summaryNdjson, csv: summaryCsv }[
      ctx.format
    ];
    await emit(ctx, render(summary));
    return hostsResult(summary.hosts);
  };
}
