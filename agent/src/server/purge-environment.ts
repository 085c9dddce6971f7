// The purge environment a changing RPC needs, or a clear refusal when the agent was started
// without one (an embedding that serves reads only).

import { status } from "@grpc/grpc-js";
import type { PurgeEnvironment } from "../engine/purge.js";
import type { CallContext } from "./rpc.js";
import { RpcError } from "./rpc-error.js";

export function purgeEnvironmentOf(ctx: CallContext, method: string): PurgeEnvironment {
  const env = ctx.agent.purge;
  if (!env) {
    throw new RpcError(
      status.FAILED_PRECONDITION,
      `${method}: this agent was started without a state directory for plans, locks and the audit log, so it cannot change its queue (qmfleet-agent serve has one: --state-dir)`,
    );
  }
  return env;
}
