// -s: queue statistics of every targeted host, and the fleet total.

import { fleetStats, type HostOutcome } from "@qmfleet/controller";
import type { QueueStats } from "@qmfleet/proto";
import { statsCsv, statsJson, statsNdjsonHost, statsNdjsonTotal, statsTable } from "../views/stats-view.js";
import type { Action } from "./action.js";

export const statsAction: Action = async (ctx) => {
  let answered = 0;
  const onHost = (outcome: HostOutcome<QueueStats>) => {
    answered++;
    if (outcome.state !== "ok") {
      ctx.stderr.write(`qmfleet: ${outcome.host.name}: ${outcome.state}: ${outcome.error ?? ""}\n`);
    } else if (ctx.stderr.isTTY) {
      ctx.stderr.write(`[${answered}/${ctx.hosts.length}] ${outcome.host.name} ok\n`);
    }
    if (ctx.format === "ndjson") {
      ctx.stdout.write(statsNdjsonHost(outcome));
    }
  };
  const fleet = await fleetStats(ctx.hosts, ctx.clients, {
    timeoutMs: ctx.timeoutMs,
    concurrency: ctx.concurrency,
    signal: ctx.signal,
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
