// CheckQueue: the queue's inconsistencies (orphans, odd entries, split disagreements...), one
// QueueProblem at a time as check.ts finds them, empty responses keeping a long check of a
// healthy queue alive (keep-alive.ts). Read-only.

import type { CheckQueueRequest, CheckQueueResponse } from "@qmfleet/proto";
import { checkQueue as checkEngine } from "../../engine/check.js";
import { detectLayout } from "../../engine/layout.js";
import { startKeepAlive } from "../keep-alive.js";
import type { StreamRpc } from "../rpc.js";
import { cancelled } from "../selection.js";
import { problemToWire } from "../wire.js";

const METHOD = "CheckQueue";

export const checkQueue: StreamRpc<CheckQueueRequest, CheckQueueResponse> = {
  role: "read",
  async handle(_request, ctx, send) {
    const layout = detectLayout(ctx.agent.queueRoot);
    const keepAlive = startKeepAlive(() => send({}));
    try {
      for await (const problem of checkEngine(layout)) {
        if (ctx.signal.aborted) throw cancelled(METHOD);
        await send({ problem: problemToWire(problem) });
        keepAlive.sent();
      }
    } finally {
      keepAlive.stop();
    }
  },
};
