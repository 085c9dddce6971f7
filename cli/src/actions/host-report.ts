// How an action tells the operator about each host as it ends: a line on stderr for every host
// that did not end ok (always), and progress for the others when a person watches a terminal.

import type { HostOutcome } from "@qmfleet/controller";
import type { ActionContext } from "./action.js";

/** A function to call with each host's outcome as it arrives. */
export function hostReporter(ctx: ActionContext): (outcome: HostOutcome<unknown>) => void {
  let answered = 0;
  return (outcome) => {
    answered++;
    if (outcome.state !== "ok") {
      ctx.stderr.write(`qmfleet: ${outcome.host.name}: ${outcome.state}: ${outcome.error ?? ""}\n`);
    } else if (ctx.stderr.isTTY) {
      ctx.stderr.write(`[${answered}/${ctx.hosts.length}] ${outcome.host.name} ok\n`);
    }
  };
}

/** What JSON and NDJSON outputs say of a host. */
export function hostJson(outcome: HostOutcome<unknown>): { name: string; state: string; error?: string } {
  return {
    name: outcome.host.name,
    state: outcome.state,
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
  };
}
