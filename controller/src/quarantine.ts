// The quarantine across the fleet: what purges kept on every host (a stream of {host, entry}),
// and putting messages back - each host restores its own ids, so a restore names HOST:ID.

import type { QuarantineEntry, RestoreQuarantineResponse } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome } from "./fanout.js";
import {
  type FleetStreamEvent,
  type FleetStreamOptions,
  fleetStream,
  serverStream,
  streamFanOut,
} from "./fleet-stream.js";
import type { InventoryHost } from "./inventory.js";

export function fleetQuarantine(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  options: Omit<FleetStreamOptions<QuarantineEntry>, "order">,
): AsyncGenerator<FleetStreamEvent<QuarantineEntry>> {
  return fleetStream(
    hosts,
    clients,
    async function* (client, ctx) {
      const responses = serverStream(
        (callOptions, metadata) => client.listQuarantine({}, metadata, callOptions),
        ctx,
      );
      for await (const response of responses) if (response.entry) yield response.entry;
    },
    options,
  );
}

export interface RestoreTarget {
  host: InventoryHost;
  quarantineIds: string[];
}

export interface FleetRestoreOptions extends FanOutOptions {
  allRecipients?: boolean;
  /** Why, for each agent's audit log. */
  reason?: string;
  onResult?: (host: InventoryHost, result: RestoreQuarantineResponse) => void | Promise<void>;
  onHost?: (outcome: HostOutcome<RestoreQuarantineResponse[]>) => void;
}

/** Restores each host's ids on that host; one outcome per target, in the order given. */
export async function fleetRestore(
  targets: readonly RestoreTarget[],
  clients: AgentClients,
  options: FleetRestoreOptions,
): Promise<HostOutcome<RestoreQuarantineResponse[]>[]> {
  const { fanOut: fanOutOptions, idleMs } = streamFanOut(options);
  const idsOf = new Map(targets.map((t) => [t.host.name, t.quarantineIds]));
  const byName = new Map<string, HostOutcome<RestoreQuarantineResponse[]>>();
  const hosts = targets.map((t) => t.host);
  const run = fanOut(
    hosts,
    clients,
    async (client, ctx) => {
      const request = {
        quarantineIds: idsOf.get(ctx.host.name) ?? [],
        allRecipients: options.allRecipients ?? false,
        reason: options.reason ?? "",
      };
      const results: RestoreQuarantineResponse[] = [];
      const responses = serverStream(
        (callOptions, metadata) => client.restoreQuarantine(request, metadata, callOptions),
        { ...ctx, idleMs },
      );
      for await (const response of responses) {
        results.push(response);
        await options.onResult?.(ctx.host, response);
      }
      return results;
    },
    fanOutOptions,
  );
  for await (const outcome of run) {
    byName.set(outcome.host.name, outcome);
    options.onHost?.(outcome);
  }
  return hosts.map((h) => byName.get(h.name) as HostOutcome<RestoreQuarantineResponse[]>);
}
