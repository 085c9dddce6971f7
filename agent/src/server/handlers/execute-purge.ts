// ExecutePurge: the second half of a purge. Runs exactly the plan a PreviewPurge made on this
// agent (engine/purge.ts: each message re-verified at the moment of change, never more than the
// plan), streaming each message's outcome as it happens, then the report.
//
// Once started, a purge runs to its end even if the caller goes away or its deadline passes:
// stopping midway would leave qmail-send stopped (stopped mode) or messages neutralized and
// unreported (live mode). The outcomes then stop streaming; the audit log has all of them.

import { status } from "@grpc/grpc-js";
import type { ExecutePurgeRequest, ExecutePurgeResponse } from "@qmfleet/proto";
import { executePurge as executeEngine } from "../../engine/purge.js";
import { startKeepAlive } from "../keep-alive.js";
import { purgeEnvironmentOf } from "../purge-environment.js";
import type { StreamRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";
import { outcomeToWire, purgeReportToWire } from "../wire.js";

const METHOD = "ExecutePurge";

/** The longest a caller may have a live purge wait for qmail-send to retire what it neutralized. */
export const MAX_RETIRE_TIMEOUT_SECONDS = 3600;

export const executePurge: StreamRpc<ExecutePurgeRequest, ExecutePurgeResponse> = {
  role: "admin",
  async handle(request, ctx, send) {
    const env = purgeEnvironmentOf(ctx, METHOD);
    if (request.planId === "") {
      throw new RpcError(
        status.INVALID_ARGUMENT,
        `${METHOD} needs plan_id, the id PreviewPurge returned: preview the purge first`,
      );
    }
    if (request.retireTimeoutSeconds > MAX_RETIRE_TIMEOUT_SECONDS) {
      throw new RpcError(
        status.INVALID_ARGUMENT,
        `${METHOD}: retire_timeout_seconds ${request.retireTimeoutSeconds} is above ${MAX_RETIRE_TIMEOUT_SECONDS}`,
      );
    }
    let streaming = true;
    const keepAlive = startKeepAlive(() => (streaming ? send({}) : Promise.resolve()));
    const stream = async (response: ExecutePurgeResponse): Promise<void> => {
      if (!streaming) return;
      try {
        await send(response);
        keepAlive.sent();
      } catch {
        // The caller went away: the purge goes on, unheard.
        streaming = false;
      }
    };
    try {
      const report = await ctx.agent.changes.run(() =>
        executeEngine(
          env,
          request.planId,
          {
            reason: request.reason,
            who: ctx.caller,
            noFlush: request.noFlush,
            ...(request.retireTimeoutSeconds > 0
              ? { retireTimeoutMs: request.retireTimeoutSeconds * 1000 }
              : {}),
          },
          (outcome) => stream({ outcome: outcomeToWire(outcome) }),
        ),
      );
      await stream({ report: purgeReportToWire(report) });
    } finally {
      keepAlive.stop();
    }
  },
};
