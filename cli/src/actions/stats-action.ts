// -s: queue statistics of every targeted host, and the fleet total.

import { fleetStats, type HostOutcome } from "@qmfleet/controller";
import type { QueueStats } from "@qmfleet/proto";
import { statsCsv, statsJson, statsNdjsonHost, statsNdjsonTotal, statsTable } from "../views/stats-view.js";
import type { Action } from "./action.js";
import { fanOutOf, hostReporter } from "./host-report.js";

export const statsAction: Action = async (ctx) => {
  const report = hostReporter(ctx);
  const onHost = (outcome: HostOutcome<QueueStats>) => {
    report(outcome);
    if (ctx.format === "ndjson") {
      ctx.stdout.write(statsNdjsonHost(outcome));
    }
  };
  const fleet = await fleetStats(ctx.hosts, ctx.clients, {
    ...fanOutOf(ctx),
    onHost,
  });
  const render = {
    table: statsTable,
    json: statsJson,
    ndjson: statsNdjsonTotal,
    csv: statsCsv,
  }[ctx.format];
  ctx.stdout.write(render(fleet));
  return { hostsNotOk: fleet.notOk };
};
