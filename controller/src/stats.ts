// Fleet statistics (qmHandle -s over every host): each host's queue counters, and their sum.

import type { QueueStats } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome, unaryCall } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";

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

/** Counts add up; the oldest message of the fleet is the oldest of any host. */
export function sumStats(list: readonly QueueStats[]): QueueStats {
  const total: QueueStats = {
    messagesInQueue: 0,
    notPreprocessed: 0,
    preprocessed: 0,
    withLocal: 0,
    withRemote: 0,
    bouncing: 0,
    beingWritten: 0,
    bytes: 0,
    oldestBirthUnix: 0,
    oldestAgeSeconds: 0,
  };
  for (const s of list) {
    total.messagesInQueue += s.messagesInQueue;
    total.notPreprocessed += s.notPreprocessed;
    total.preprocessed += s.preprocessed;
    total.withLocal += s.withLocal;
    total.withRemote += s.withRemote;
    total.bouncing += s.bouncing;
    total.beingWritten += s.beingWritten;
    total.bytes += s.bytes;
    // 0 means "no message" on a host, not the epoch.
    if (s.oldestBirthUnix > 0 && (total.oldestBirthUnix === 0 || s.oldestBirthUnix < total.oldestBirthUnix)) {
      total.oldestBirthUnix = s.oldestBirthUnix;
    }
    total.oldestAgeSeconds = Math.max(total.oldestAgeSeconds, s.oldestAgeSeconds);
  }
  return total;
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
