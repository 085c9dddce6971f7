import { stat } from "node:fs/promises";
import type { GetAgentInfoRequest, GetAgentInfoResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { qmailSendState } from "../qmail-send-lock.js";
import type { UnaryRpc } from "../rpc.js";

export const getAgentInfo: UnaryRpc<GetAgentInfoRequest, GetAgentInfoResponse> = {
  role: "read",
  async handle(_request, ctx) {
    const { queueRoot, hostname, version } = ctx.agent;
    const [layout, root, qmailSend] = await Promise.all([
      detectLayout(queueRoot),
      stat(queueRoot, { bigint: true }),
      qmailSendState(queueRoot),
    ]);
    return {
      version,
      hostname,
      queueRoot,
      split: layout.split,
      bigTodo: layout.bigTodo,
      qmailSend,
      // Plans are bound to this: a queue restored or remounted elsewhere is another queue.
      queueId: `${hostname}:${root.dev}:${root.ino}`,
      callerRole: ctx.role,
    };
  },
};
