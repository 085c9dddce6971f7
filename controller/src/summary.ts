// "What is filling the fleet's queues?": every host's Summarize merged. Counts and bytes of the
// same key add up across hosts (the null sender of mx1 and of mx2 are one group), then the top N
// per dimension are kept; the qshape tables add up row by row (TOTAL exactly, domains by name).
//
// Each host reports only its own top groups, so a key just outside one host's list is missing
// from that host's share. Each host is asked for more groups than shown (HOST_TOP_FACTOR x top),
// and the merge knows how wrong it can be: a host whose list is full ("asked" entries) has no
// unreported key counting more than its last entry. A kept group reported by every full host is
// exact; the top is certain when no unreported key could reach the last kept count. A dimension
// failing either test is reported as approximate (its counts are lower bounds).

import { type Filter, GroupBy, type ShapeRow, type SummarizeResponse } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome, unaryCall } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";

export const HOST_TOP_FACTOR = 5;
/** The agent's cap on groups per dimension. */
const AGENT_MAX_TOP = 1000;

export const DIMENSIONS: readonly GroupBy[] = [
  GroupBy.GROUP_BY_SENDER,
  GroupBy.GROUP_BY_RECIPIENT_DOMAIN,
  GroupBy.GROUP_BY_SUBJECT,
  GroupBy.GROUP_BY_CLIENT_IP,
];

export interface FleetSummaryRequest {
  filter: Filter;
  /** Groups shown per dimension. */
  top: number;
  shape: boolean;
}

export interface FleetGroup {
  by: GroupBy;
  key: string;
  count: number;
  bytes: number;
  /** Hosts on which the key was among the groups reported. */
  hosts: number;
}

export interface FleetShape {
  bucketLabels: string[];
  /** "TOTAL" first (exact), then the top domains by total. */
  rows: ShapeRow[];
  /** Domain rows may be low or missing (see above); TOTAL is always exact. */
  approximate: boolean;
}

export interface FleetSummary {
  hosts: HostOutcome<SummarizeResponse>[];
  notOk: number;
  matched: number;
  matchedBytes: number;
  /** Per dimension, by count (then key), at most `top` each. */
  groups: FleetGroup[];
  /** Dimensions whose counts or ranking may be off (see above). */
  approximate: GroupBy[];
  shape?: FleetShape;
}

/** Groups asked of each host for `top` shown. */
export function hostTop(top: number): number {
  return Math.min(AGENT_MAX_TOP, Math.max(top, top * HOST_TOP_FACTOR));
}

interface Ranked {
  key: string;
  count: number;
}

const byCountThenKey = (a: Ranked, b: Ranked) =>
  b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * The top `top` of several hosts' top lists, summed by key with `add`, and whether that result
 * may be off. `lists[h]` is host h's list, full when it has `asked` entries.
 */
function mergeTop<T extends Ranked>(
  lists: readonly (readonly T[])[],
  asked: number,
  top: number,
  start: (first: T) => T,
  add: (into: T, more: T) => void,
): { kept: T[]; approximate: boolean } {
  const merged = new Map<string, { row: T; reportedBy: Set<number> }>();
  // For a full list, the most any key it left out can count on that host.
  const ceilings = new Map<number, number>();
  lists.forEach((list, h) => {
    if (list.length >= asked) ceilings.set(h, Math.min(...list.map((r) => r.count)));
    for (const row of list) {
      const seen = merged.get(row.key);
      if (seen) {
        add(seen.row, row);
        seen.reportedBy.add(h);
      } else {
        merged.set(row.key, { row: start(row), reportedBy: new Set([h]) });
      }
    }
  });
  const ranked = [...merged.values()].sort((a, b) => byCountThenKey(a.row, b.row));
  const kept = ranked.slice(0, top);
  const missing = (reportedBy: Set<number>) =>
    [...ceilings].reduce((sum, [h, ceiling]) => sum + (reportedBy.has(h) ? 0 : ceiling), 0);
  const inexact = kept.some((g) => missing(g.reportedBy) > 0);
  // Only a full top can be missing a key: one not kept, or one no host reported at all, whose
  // count plus what full lists may have left out could pass the last kept.
  const last = kept.at(-1)?.row.count ?? 0;
  const couldOvertake =
    kept.length === top &&
    (ranked.slice(top).some((g) => g.row.count + missing(g.reportedBy) > last) || missing(new Set()) > last);
  return { kept: kept.map((g) => g.row), approximate: inexact || couldOvertake };
}

/** Merges the answers of the hosts that answered; `asked` is what each host was asked for (hostTop). */
export function mergeSummaries(
  answers: readonly SummarizeResponse[],
  top: number,
  asked: number,
): Omit<FleetSummary, "hosts" | "notOk"> {
  const groups: FleetGroup[] = [];
  const approximate: GroupBy[] = [];
  for (const by of DIMENSIONS) {
    const lists = answers.map((a) =>
      a.groups
        .filter((g) => g.by === by)
        .map((g) => ({ by, key: g.key, count: g.count, bytes: g.bytes, hosts: 1 })),
    );
    const { kept, approximate: off } = mergeTop<FleetGroup>(
      lists,
      asked,
      top,
      (first) => ({ ...first }),
      (into, more) => {
        into.count += more.count;
        into.bytes += more.bytes;
        into.hosts++;
      },
    );
    groups.push(...kept);
    if (off) approximate.push(by);
  }
  const shapes = answers.flatMap((a) => (a.shape ? [a.shape] : []));
  return {
    matched: answers.reduce((sum, a) => sum + a.matched, 0),
    matchedBytes: answers.reduce((sum, a) => sum + a.matchedBytes, 0),
    groups,
    approximate,
    ...(shapes.length > 0 ? { shape: mergeShapes(shapes, top, asked) } : {}),
  };
}

function mergeShapes(
  shapes: readonly { bucketLabels: string[]; rows: ShapeRow[] }[],
  top: number,
  asked: number,
): FleetShape {
  const bucketLabels = shapes[0]?.bucketLabels ?? [];
  const add = (into: ShapeRow, row: ShapeRow) => {
    into.total += row.total;
    row.counts.forEach((n, i) => {
      into.counts[i] = (into.counts[i] ?? 0) + n;
    });
  };
  const total: ShapeRow = { domain: "TOTAL", total: 0, counts: bucketLabels.map(() => 0) };
  for (const shape of shapes) if (shape.rows[0]) add(total, shape.rows[0]);
  const { kept, approximate } = mergeTop(
    shapes.map((shape) => shape.rows.slice(1).map((row) => ({ ...row, key: row.domain, count: row.total }))),
    asked,
    top,
    (first) => ({ ...first, counts: [...first.counts] }),
    (into, more) => {
      add(into, more);
      into.count = into.total;
    },
  );
  return {
    bucketLabels: [...bucketLabels],
    rows: [total, ...kept.map(({ domain, total: t, counts }) => ({ domain, total: t, counts }))],
    approximate,
  };
}

/** Summarize on every host, merged. A host whose qshape buckets differ from the first's fails. */
export async function fleetSummary(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  request: FleetSummaryRequest,
  options: FanOutOptions & { onHost?: (outcome: HostOutcome<SummarizeResponse>) => void },
): Promise<FleetSummary> {
  const asked = hostTop(request.top);
  const byName = new Map<string, HostOutcome<SummarizeResponse>>();
  let labels: string | undefined;
  const run = fanOut(
    hosts,
    clients,
    (client, ctx) =>
      unaryCall(
        client.summarize.bind(client),
        { filter: request.filter, groupBy: [...DIMENSIONS], top: asked, shape: request.shape },
        ctx,
      ),
    options,
  );
  for await (let outcome of run) {
    const shape = outcome.value?.shape;
    if (shape) {
      const these = JSON.stringify(shape.bucketLabels);
      labels ??= these;
      if (these !== labels) {
        // Adding counts of different age buckets would be wrong: leave this host out, by name.
        outcome = {
          host: outcome.host,
          state: "failed",
          error: `its qshape age buckets ${these} differ from the other hosts' ${labels}: run the same agent version everywhere`,
          elapsedMs: outcome.elapsedMs,
        };
      }
    }
    byName.set(outcome.host.name, outcome);
    options.onHost?.(outcome);
  }
  const ordered = hosts.map((h) => byName.get(h.name) as HostOutcome<SummarizeResponse>);
  const answers = ordered.flatMap((o) => (o.state === "ok" && o.value ? [o.value] : []));
  return {
    hosts: ordered,
    notOk: ordered.length - answers.length,
    ...mergeSummaries(answers, request.top, asked),
  };
}
