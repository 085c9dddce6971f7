import type { GetAgentInfoRequest, GetAgentInfoResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { queueIdentity } from "../../engine/plan.js";
import { findQmailSend } from "../../engine/qmail-send.js";
import type { UnaryRpc } from "../rpc.js";

export const getAgentInfo: UnaryRpc<GetAgentInfoRequest, GetAgentInfoResponse> = {
  role: "read",
  async handle(_request, ctx) {
    const { queueRoot, hostname, version } = ctx.agent;
    const layout = detectLayout(queueRoot);
    const holder = findQmailSend(queueRoot);
    return {
      version,
      hostname,
      queueRoot,
      split: layout.split,
      bigTodo: layout.bigTodo,
      qmailSend: { running: holder !== undefined, pid: holder?.pid ?? 0 },
      // Plans are bound to this: a queue restored or remounted elsewhere is another queue.
      queueId: queueIdentity(queueRoot, hostname),
      callerRole: ctx.role,
    };
  },
};
