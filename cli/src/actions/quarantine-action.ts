// --quarantine (what purges kept, on every host) and --restore HOST:ID (put messages back through
// qmail-queue on their host).

import { fleetQuarantine, fleetRestore, type HostOutcome, type RestoreTarget } from "@qmfleet/controller";
import type { QuarantineEntry } from "@qmfleet/proto";
import { EXIT_HOST_FAILED } from "../exit-codes.js";
import { emit } from "../output.js";
import { renderJson, renderNdjsonLine } from "../render.js";
import { oneLine } from "../text-width.js";
import { UsageError } from "../usage-error.js";
import type { Action } from "./action.js";
import { fanOutOf, hostJson, hostReporter, hostsResult } from "./host-report.js";

function entryRecord(host: string, e: QuarantineEntry) {
  return {
    host,
    quarantineId: e.quarantineId,
    originalId: e.originalId,
    sender: e.sender,
    recipients: e.recipients.map((r) => ({ address: r.address, done: r.done })),
    subject: e.subject,
    size: e.size,
    birthTime: e.birthTimeUnix,
    quarantinedAt: e.quarantinedAtUnix,
    planId: e.planId,
    reason: e.reason,
  };
}

export const quarantineListAction: Action = async (ctx) => {
  const report = hostReporter(ctx);
  const ended = new Map<string, HostOutcome<unknown>>();
  const json = ctx.format === "json";
  let count = 0;
  if (json) await emit(ctx, '{"entries":[');
  const events = fleetQuarantine(ctx.hosts, ctx.clients, fanOutOf(ctx));
  for await (const event of events) {
    if (event.kind === "host") {
      report(event.outcome);
      ended.set(event.outcome.host.name, event.outcome);
      if (ctx.format === "ndjson")
        await emit(ctx, renderNdjsonLine({ kind: "host", ...hostJson(event.outcome) }));
      continue;
    }
    const r = entryRecord(event.host.name, event.item);
    if (json) await emit(ctx, `${count > 0 ? ",\n" : "\n"}${JSON.stringify(r)}`);
    else if (ctx.format === "ndjson") await emit(ctx, renderNdjsonLine({ kind: "entry", ...r }));
    else {
      const when = new Date(r.quarantinedAt * 1000).toISOString();
      await emit(
        ctx,
        `${r.host}:${r.quarantineId}\n  was ${r.originalId}, ${r.size} bytes, kept ${when} by plan ${r.planId}: ${oneLine(r.reason)}\n` +
          `  <${oneLine(r.sender)}> -> ${oneLine(r.recipients.map((x) => x.address).join(", "))}\n  Subject: ${oneLine(r.subject)}\n`,
      );
    }
    count++;
  }
  const outcomes = ctx.hosts.map((h) => ended.get(h.name) as HostOutcome<unknown>);
  if (json)
    await emit(
      ctx,
      `${count > 0 ? "\n" : ""}],\n"hosts":${JSON.stringify(outcomes.map(hostJson))},"count":${count}}\n`,
    );
  else if (ctx.format === "table") await emit(ctx, `${count} quarantined messages\n`);
  return hostsResult(outcomes);
};

/** Restores each host's ids (HOST -> quarantine ids); every HOST must be a targeted host. */
export function restoreAction(
  idsByHost: ReadonlyMap<string, string[]>,
  allRecipients: boolean,
  reason: string,
): Action {
  return async (ctx) => {
    const targets: RestoreTarget[] = [...idsByHost].map(([name, quarantineIds]) => {
      const host = ctx.hosts.find((h) => h.name === name);
      if (!host) throw new UsageError(`--restore ${name}:...: host ${name} is not among the targeted hosts`);
      return { host, quarantineIds };
    });
    let failed = 0;
    const lines: string[] = [];
    const records: object[] = [];
    const outcomes = await fleetRestore(targets, ctx.clients, {
      ...fanOutOf(ctx),
      allRecipients,
      reason,
      onHost: hostReporter(ctx),
      onResult: (host, r) => {
        if (!r.ok) failed++;
        records.push({
          host: host.name,
          quarantineId: r.quarantineId,
          ok: r.ok,
          ...(r.error ? { error: r.error } : {}),
        });
        lines.push(
          `${host.name}:${r.quarantineId}: ${r.ok ? "restored" : `NOT restored: ${oneLine(r.error)}`}\n`,
        );
      },
    });
    if (ctx.format === "json") {
      await emit(ctx, renderJson({ restored: records, hosts: outcomes.map(hostJson), failed }));
    } else if (ctx.format === "ndjson") {
      await emit(ctx, records.map((r) => renderNdjsonLine({ kind: "restore", ...r })).join(""));
    } else {
      await emit(ctx, lines.join(""));
    }
    const result = hostsResult(outcomes);
    return failed > 0 && result.hostsNotOk === 0 ? { hostsNotOk: 0, status: EXIT_HOST_FAILED } : result;
  };
}
