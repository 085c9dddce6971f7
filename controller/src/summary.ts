// "What is filling the fleet's queues?": every host's Summarize merged. Counts and bytes of the
// same key add up across hosts (the null sender of mx1 and of mx2 are one group), then the top N
// per dimension are kept; the qshape tables add up row by row (TOTAL exactly, domains by name).
//
// Each host reports only its own top groups, so a key just outside one host's top is missing
// from that host's share. To keep the fleet top right in practice each host is asked for more
// groups than shown (HOST_TOP_FACTOR x top), and a dimension in which some host's list was full
// is reported as approximate: its counts are lower bounds.

import { GroupBy, type Filter, type ShapeRow, type SummarizeResponse } from "@qmfleet/proto";
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
  /** Some host's domain list was full: domain counts are lower bounds. */
  approximate: boolean;
}

export interface FleetSummary {
  hosts: HostOutcome<SummarizeResponse>[];
  notOk: number;
  matched: number;
  matchedBytes: number;
  /** Per dimension, by count (then key), at most `top` each. */
  groups: FleetGroup[];
  /** Dimensions whose counts are lower bounds (some host's list was full). */
  approximate: GroupBy[];
  shape?: FleetShape;
}

const byCountThenKey = (a: { count: number; key: string }, b: { count: number; key: string }) =>
  b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** Groups asked of each host for `top` shown. */
export function hostTop(top: number): number {
  return Math.min(AGENT_MAX_TOP, Math.max(top, top * HOST_TOP_FACTOR));
}

/** Merges the answers of the hosts that answered; `asked` is what each host was asked for (hostTop). */
export function mergeSummaries(
  answers: readonly SummarizeResponse[],
  top: number,
  asked: number,
): Omit<FleetSummary, "hosts" | "notOk"> {
  const merged = new Map<string, FleetGroup>();
  const approximate = new Set<GroupBy>();
  let matched = 0;
  let matchedBytes = 0;
  for (const answer of answers) {
    matched += answer.matched;
    matchedBytes += answer.matchedBytes;
    const perDimension = new Map<GroupBy, number>();
    for (const g of answer.groups) {
      perDimension.set(g.by, (perDimension.get(g.by) ?? 0) + 1);
      const id = `${g.by}\0${g.key}`;
      const group = merged.get(id);
      if (group) {
        group.count += g.count;
        group.bytes += g.bytes;
        group.hosts++;
      } else {
        merged.set(id, { by: g.by, key: g.key, count: g.count, bytes: g.bytes, hosts: 1 });
      }
    }
    for (const [by, n] of perDimension) if (n >= asked) approximate.add(by);
  }
  const groups: FleetGroup[] = [];
  for (const by of DIMENSIONS) {
    groups.push(
      ...[...merged.values()]
        .filter((g) => g.by === by)
        .sort(byCountThenKey)
        .slice(0, top),
    );
  }
  const shapes = answers.flatMap((a) => (a.shape ? [a.shape] : []));
  return {
    matched,
    matchedBytes,
    groups,
    approximate: DIMENSIONS.filter((by) => approximate.has(by)),
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
  const empty = (domain: string): ShapeRow => ({ domain, total: 0, counts: bucketLabels.map(() => 0) });
  const total = empty("TOTAL");
  const domains = new Map<string, ShapeRow>();
  let approximate = false;
  for (const shape of shapes) {
    const [hostTotal, ...rows] = shape.rows;
    if (hostTotal) add(total, hostTotal);
    if (rows.length >= asked) approximate = true;
    for (const row of rows) {
      let into = domains.get(row.domain);
      if (!into) {
        into = empty(row.domain);
        domains.set(row.domain, into);
      }
      add(into, row);
    }
  }
  const kept = [...domains.values()]
    .sort((a, b) => b.total - a.total || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0))
    .slice(0, top);
  return { bucketLabels: [...bucketLabels], rows: [total, ...kept], approximate };
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
