// Fleet queue check: every host's CheckQueue problems as one stream of {host, problem}.

import type { QueueProblem } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import type { FanOutOptions } from "./fanout.js";
import { type FleetStreamEvent, fleetStream, serverStream } from "./fleet-stream.js";
import type { InventoryHost } from "./inventory.js";

export function fleetCheck(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  options: FanOutOptions,
): AsyncGenerator<FleetStreamEvent<QueueProblem>> {
  return fleetStream(
    hosts,
    clients,
    async function* (client, ctx) {
      const responses = serverStream(
        (callOptions, metadata) => client.checkQueue({}, metadata, callOptions),
        ctx,
      );
      for await (const response of responses) {
        // An empty response is the agent's keep-alive during a long quiet scan.
        if (response.problem) yield response.problem;
      }
    },
    options,
  );
}
