// ListMessages: the messages a filter selects, streamed one MessageSummary at a time.
// Unsorted, they go out in scan order as they are found (memory: one message), the stream
// stopping at `limit` when one is given. Sorted, the agent must see every match before sending
// the first, so it keeps only the first `limit` of the order (TopN, limit <= MAX_SORTED_LIMIT)
// and sends them once the scan ends. Either way `send` waits while the client is slow to read,
// the scan stops when the client cancels, and empty responses keep a quiet stream alive
// (keep-alive.ts).

import { status } from "@grpc/grpc-js";
import {
  type ListMessagesRequest,
  type ListMessagesResponse,
  type MessageSummary,
  messageComparator,
  sortLimitProblem,
} from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { startKeepAlive } from "../keep-alive.js";
import type { StreamRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";
import { requestSelection, selectedMessages } from "../selection.js";
import { TopN } from "../top-n.js";
import { messageToWire } from "../wire.js";

const METHOD = "ListMessages";

export const listMessages: StreamRpc<ListMessagesRequest, ListMessagesResponse> = {
  role: "read",
  async handle(request, ctx, send) {
    const now = Math.floor(Date.now() / 1000);
    const selection = requestSelection(METHOD, request.filter, now);
    const problem = sortLimitProblem(request.sort, request.limit);
    if (problem) throw new RpcError(status.INVALID_ARGUMENT, `${METHOD}: ${problem}`);
    const compare = messageComparator(request.sort, request.descending);
    const layout = detectLayout(ctx.agent.queueRoot);
    const matches = selectedMessages(METHOD, layout, selection, ctx.signal);
    const keepAlive = startKeepAlive(() => send({}));
    const sendMessage = async (message: MessageSummary) => {
      await send({ message });
      keepAlive.sent();
    };
    try {
      if (!compare) {
        let sent = 0;
        for await (const message of matches) {
          await sendMessage(messageToWire(message));
          if (request.limit > 0 && ++sent >= request.limit) return;
        }
        return;
      }
      const best = new TopN<MessageSummary>(request.limit, compare);
      for await (const message of matches) best.offer(messageToWire(message));
      for (const message of best.drain()) await sendMessage(message);
    } finally {
      keepAlive.stop();
    }
  },
};
