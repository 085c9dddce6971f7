// SendNow (qmHandle -a): ALRM to qmail-send, which retries every queued message now. Audited:
// on a big queue it is a burst of delivery attempts.

import type { SendNowRequest, SendNowResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { sendNow as sendNowEngine } from "../../engine/retry.js";
import { purgeEnvironmentOf } from "../purge-environment.js";
import type { UnaryRpc } from "../rpc.js";

export const sendNow: UnaryRpc<SendNowRequest, SendNowResponse> = {
  role: "admin",
  async handle(request, ctx) {
    const env = purgeEnvironmentOf(ctx, "SendNow");
    const result = sendNowEngine(detectLayout(env.queueRoot));
    env.audit?.append({ event: "send-now", who: ctx.caller, reason: request.reason, ...result });
    return result;
  },
};
