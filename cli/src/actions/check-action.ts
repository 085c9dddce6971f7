// --check: every targeted host's queue problems (orphans, odd entries, split disagreements...),
// streamed with the host that has them. Read-only. Problems found: exit status 3.

import { fleetCheck, type HostOutcome } from "@qmfleet/controller";
import { EXIT_PROBLEMS_FOUND } from "../exit-codes.js";
import { emit } from "../output.js";
import { checkView } from "../views/check-view.js";
import type { Action } from "./action.js";
import { fanOutOf, hostReporter, hostsResult } from "./host-report.js";

export const checkAction: Action = async (ctx) => {
  const view = checkView(
    ctx.format,
    ctx.hosts.map((h) => h.name),
  );
  const report = hostReporter(ctx);
  const ended = new Map<string, HostOutcome<unknown>>();
  let count = 0;
  await emit(ctx, view.begin());
  const events = fleetCheck(ctx.hosts, ctx.clients, fanOutOf(ctx));
  for await (const event of events) {
    if (event.kind === "item") {
      count++;
      await emit(ctx, view.problem(event.host.name, event.item));
    } else {
      report(event.outcome);
      ended.set(event.outcome.host.name, event.outcome);
      await emit(ctx, view.host(event.outcome));
    }
  }
  const outcomes = ctx.hosts.map((h) => ended.get(h.name) as HostOutcome<unknown>);
  await emit(ctx, view.end(outcomes, count));
  const result = hostsResult(outcomes);
  return result.hostsNotOk === 0 && count > 0 ? { ...result, status: EXIT_PROBLEMS_FOUND } : result;
};
