// Summarize: "what is filling the queue?" for the messages a filter selects: top senders,
// recipient domains, subjects and client IPs, and the qshape table, in one pass (summarize.ts
// keeps memory bounded whatever the queue).

import { status } from "@grpc/grpc-js";
import type { SummarizeRequest, SummarizeResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { type GroupBy, Summarizer } from "../../engine/summarize.js";
import type { UnaryRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";
import { requestSelection, selectedMessages } from "../selection.js";
import { groupByFromWire, summaryToWire } from "../wire.js";

const METHOD = "Summarize";

/** No dimension asked for: all of them, what an operator in an incident wants. */
const ALL_DIMENSIONS: GroupBy[] = ["sender", "recipientDomain", "subject", "clientIp"];

/** Groups per dimension a caller may ask for; the controller asks more than it shows to merge hosts. */
export const MAX_TOP = 1000;

export const summarize: UnaryRpc<SummarizeRequest, SummarizeResponse> = {
  role: "read",
  async handle(request, ctx) {
    const now = Math.floor(Date.now() / 1000);
    const selection = requestSelection(METHOD, request.filter, now);
    const groupBy = request.groupBy.map((by) => {
      const dimension = groupByFromWire(by);
      if (!dimension) {
        throw new RpcError(
          status.INVALID_ARGUMENT,
          `${METHOD}: group_by ${by} is not a dimension (sender, recipient domain, subject or client IP)`,
        );
      }
      return dimension;
    });
    if (request.top > MAX_TOP) {
      throw new RpcError(status.INVALID_ARGUMENT, `${METHOD}: top ${request.top} is above ${MAX_TOP}`);
    }
    const summarizer = new Summarizer({
      groupBy: groupBy.length > 0 ? [...new Set(groupBy)] : ALL_DIMENSIONS,
      ...(request.top > 0 ? { top: request.top } : {}),
      shape: request.shape,
      now,
    });
    const layout = detectLayout(ctx.agent.queueRoot);
    for await (const message of selectedMessages(METHOD, layout, selection, ctx.signal))
      summarizer.add(message);
    return summaryToWire(summarizer.result());
  },
};
