// qmHandle -t and -a across the fleet: RetrySooner (matched messages with remote recipients to
// deliver made due now, then ALRM) and SendNow (ALRM alone) on every targeted host. Neither is a
// deletion, so there is no plan: each host answers with what it did.

import type { RetrySoonerRequest, RetrySoonerResponse, SendNowResponse } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome, unaryCall } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";

export interface FleetRetryOptions extends FanOutOptions {
  onHost?: (outcome: HostOutcome<unknown>) => void;
}

async function collect<T>(
  hosts: readonly InventoryHost[],
  outcomes: AsyncGenerator<HostOutcome<T>>,
  onHost?: (outcome: HostOutcome<T>) => void,
): Promise<HostOutcome<T>[]> {
  const byName = new Map<string, HostOutcome<T>>();
  for await (const outcome of outcomes) {
    byName.set(outcome.host.name, outcome);
    onHost?.(outcome);
  }
  return hosts.map((h) => byName.get(h.name) as HostOutcome<T>);
}

/** -t on every host; one outcome per host, in the order given. */
export function fleetRetrySooner(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  request: RetrySoonerRequest,
  options: FleetRetryOptions,
): Promise<HostOutcome<RetrySoonerResponse>[]> {
  return collect(
    hosts,
    fanOut(
      hosts,
      clients,
      (client, ctx) => unaryCall(client.retrySooner.bind(client), request, ctx),
      options,
    ),
    options.onHost,
  );
}

/** -a on every host. */
export function fleetSendNow(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  reason: string,
  options: FleetRetryOptions,
): Promise<HostOutcome<SendNowResponse>[]> {
  return collect(
    hosts,
    fanOut(hosts, clients, (client, ctx) => unaryCall(client.sendNow.bind(client), { reason }, ctx), options),
    options.onHost,
  );
}
