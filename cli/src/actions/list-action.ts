// -l / -L / -R across the fleet, and the preview of a deletion (--dry-run): every targeted host's
// matching messages, written as they arrive, then each host's state.

import { fleetMessages, type HostOutcome } from "@qmfleet/controller";
import type { ListMessagesRequest } from "@qmfleet/proto";
import { emit } from "../output.js";
import { type DryRun, listView } from "../views/messages-view.js";
import type { Action } from "./action.js";
import { fanOutOf, hostReporter, hostsResult } from "./host-report.js";

export interface ListOptions {
  request: ListMessagesRequest;
  /** -N: HOST:ID only. */
  numbers: boolean;
  dryRun?: DryRun;
}

export function listAction(options: ListOptions): Action {
  return async (ctx) => {
    const view = listView({
      format: ctx.format,
      numbers: options.numbers,
      hostNames: ctx.hosts.map((h) => h.name),
      now: Math.floor(Date.now() / 1000),
      ...(options.dryRun ? { dryRun: options.dryRun } : {}),
    });
    const report = hostReporter(ctx);
    const ended = new Map<string, HostOutcome<unknown>>();
    const totals = { count: 0, bytes: 0 };
    await emit(ctx, view.begin());
    const events = fleetMessages(ctx.hosts, ctx.clients, options.request, fanOutOf(ctx));
    for await (const event of events) {
      if (event.kind === "item") {
        totals.count++;
        totals.bytes += event.item.size;
        await emit(ctx, view.message(event.host.name, event.item));
      } else {
        report(event.outcome);
        ended.set(event.outcome.host.name, event.outcome);
        await emit(ctx, view.host(event.outcome));
      }
    }
    const outcomes = ctx.hosts.map((h) => ended.get(h.name) as HostOutcome<unknown>);
    await emit(ctx, view.end(outcomes, totals));
    return hostsResult(outcomes);
  };
}
