// Fleet listings (qmHandle -l/-L/-R across hosts, and what a deletion would select): every
// host's ListMessages merged into one stream of {host, message}. The limit is per host; with a
// sort, each host sorts its own first `limit` and the hosts' streams are merged into one sorted
// stream, so `--sort age --desc --limit 20` gives the fleet's oldest messages first.

import { type ListMessagesRequest, type MessageSummary, messageComparator } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FleetStreamEvent, type FleetStreamOptions, fleetStream, serverStream } from "./fleet-stream.js";
import type { InventoryHost } from "./inventory.js";

export function fleetMessages(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  request: ListMessagesRequest,
  options: Omit<FleetStreamOptions<MessageSummary>, "order">,
): AsyncGenerator<FleetStreamEvent<MessageSummary>> {
  const order = messageComparator(request.sort, request.descending);
  return fleetStream(
    hosts,
    clients,
    async function* (client, ctx) {
      const responses = serverStream(
        (callOptions, metadata) => client.listMessages(request, metadata, callOptions),
        ctx,
      );
      for await (const response of responses) {
        // An empty response is the agent's keep-alive during a long quiet scan.
        if (response.message) yield response.message;
      }
    },
    { ...options, ...(order ? { order } : {}) },
  );
}
