// Fleet statistics (qmHandle -s over every host): each host's queue counters, and their sum.

import type { QueueStats } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome, unaryCall } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";
import { sumCounts } from "./sum-counts.js";

export interface FleetStats {
  /** One outcome per targeted host, in the order the hosts were given. */
  hosts: HostOutcome<QueueStats>[];
  /** Sum over the hosts that answered. */
  total: QueueStats;
  /** Hosts whose state is not ok. */
  notOk: number;
}

export interface FleetStatsOptions extends FanOutOptions {
  /** Called with each host's outcome as it arrives (progress). */
  onHost?: (outcome: HostOutcome<QueueStats>) => void;
}

/** The counters of QueueStats, in the order every output shows them (the oldest message after). */
export const STATS_COUNT_KEYS = [
  "messagesInQueue",
  "notPreprocessed",
  "preprocessed",
  "withLocal",
  "withRemote",
  "bouncing",
  "beingWritten",
  "bytes",
] as const;

/** Counts add up; the oldest message of the fleet is the oldest of any host. */
export function sumStats(list: readonly QueueStats[]): QueueStats {
  // 0 means "no message" on a host, not the epoch.
  const births = list.map((s) => s.oldestBirthUnix).filter((t) => t > 0);
  return {
    ...sumCounts(list, STATS_COUNT_KEYS),
    oldestBirthUnix: births.length > 0 ? Math.min(...births) : 0,
    oldestAgeSeconds: Math.max(0, ...list.map((s) => s.oldestAgeSeconds)),
  };
}

export async function fleetStats(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  options: FleetStatsOptions,
): Promise<FleetStats> {
  const byName = new Map<string, HostOutcome<QueueStats>>();
  const outcomes = fanOut(
    hosts,
    clients,
    async (client, ctx) => {
      const response = await unaryCall(client.getStats.bind(client), {}, ctx);
      if (!response.stats) {
        throw new Error("the agent answered GetStats without stats");
      }
      return response.stats;
    },
    options,
  );
  for await (const outcome of outcomes) {
    byName.set(outcome.host.name, outcome);
    options.onHost?.(outcome);
  }
  const ordered = hosts.map((h) => byName.get(h.name) as HostOutcome<QueueStats>);
  const answered = ordered.flatMap((o) => (o.state === "ok" && o.value ? [o.value] : []));
  return { hosts: ordered, total: sumStats(answered), notOk: ordered.length - answered.length };
}
