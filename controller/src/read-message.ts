// One message on one host (qmHandle -mN with a fleet): host + id (+ fingerprint, which the agent
// checks: the id may name another message by now). The detail comes first, then the raw bytes,
// handed on chunk by chunk as they arrive, so a 50 MB message is never held whole.

import type { MessageDetail, MessageRef } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostOutcome } from "./fanout.js";
import { serverStream, streamFanOut } from "./fleet-stream.js";
import type { InventoryHost } from "./inventory.js";

export interface ReadMessageHandlers {
  onDetail(detail: MessageDetail): void | Promise<void>;
  /** Awaited before the next chunk is read: write it out here. */
  onChunk(chunk: Buffer): void | Promise<void>;
}

/** The host's outcome; value: raw bytes received. */
export async function readFleetMessage(
  host: InventoryHost,
  clients: AgentClients,
  ref: MessageRef,
  maxBytes: number,
  handlers: ReadMessageHandlers,
  options: FanOutOptions,
): Promise<HostOutcome<number>> {
  const { fanOut: fanOutOptions, idleMs } = streamFanOut(options);
  const run = fanOut(
    [host],
    clients,
    async (client, ctx) => {
      let detailSeen = false;
      let bytes = 0;
      const responses = serverStream(
        (callOptions, metadata) => client.readMessage({ ref, maxBytes }, metadata, callOptions),
        { ...ctx, idleMs },
      );
      for await (const response of responses) {
        if (response.detail) {
          detailSeen = true;
          await handlers.onDetail(response.detail);
        } else if (response.rawChunk) {
          if (!detailSeen) throw new Error("the agent sent raw bytes before the message detail");
          bytes += response.rawChunk.length;
          await handlers.onChunk(response.rawChunk);
        }
      }
      if (!detailSeen) throw new Error("the agent ended ReadMessage without the message detail");
      return bytes;
    },
    fanOutOptions,
  );
  for await (const outcome of run) return outcome;
  throw new Error("no outcome for the one host asked");
}
