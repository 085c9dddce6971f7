// How an action tells the operator about each host as it ends: a line on stderr for every host
// that did not end ok (always), and progress for the others when a person watches a terminal.

import type { FanOutOptions, HostOutcome } from "@qmfleet/controller";
import { EXIT_USAGE } from "../exit-codes.js";
import type { ActionContext, ActionResult } from "./action.js";

/** The per-host deadline, concurrency and cancellation every fleet call of an action takes. */
export function fanOutOf(ctx: ActionContext): FanOutOptions {
  return { timeoutMs: ctx.timeoutMs, concurrency: ctx.concurrency, signal: ctx.signal };
}

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

/**
 * Every host refused the request as INVALID_ARGUMENT (a pattern RE2 cannot run, say): the
 * command line is wrong, not the fleet, so the exit status is the usage error's.
 */
export function allRefusedAsInvalid(outcomes: readonly HostOutcome<unknown>[]): boolean {
  return (
    outcomes.length > 0 &&
    outcomes.every((o) => o.state === "failed" && o.error?.startsWith("INVALID_ARGUMENT:"))
  );
}

/** The result of an action whose hosts ended as `outcomes`. */
export function hostsResult(outcomes: readonly HostOutcome<unknown>[]): ActionResult {
  const hostsNotOk = outcomes.filter((o) => o.state !== "ok").length;
  return allRefusedAsInvalid(outcomes) ? { hostsNotOk, status: EXIT_USAGE } : { hostsNotOk };
}
