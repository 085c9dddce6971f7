// PreviewPurge: the first half of a purge. Scans with the filter and writes a plan on the agent
// (engine/plan.ts): its id, what it matched and a sample go back in the PlanSummary, after one
// PlannedMessage per match when the caller asks for them. Nothing in the queue changes; the plan
// is what ExecutePurge may touch and nothing more. Audited (who: the certificate's CN).

import { status } from "@grpc/grpc-js";
import type { PreviewPurgeRequest, PreviewPurgeResponse } from "@qmfleet/proto";
import { previewPurge as previewEngine } from "../../engine/purge.js";
import { filterFromWire } from "../../filter-wire.js";
import { startKeepAlive } from "../keep-alive.js";
import { purgeEnvironmentOf } from "../purge-environment.js";
import type { StreamRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";
import { cancelled, requestSelection } from "../selection.js";
import { messageToWire, planSummaryToWire, purgeModeFromWire } from "../wire.js";

const METHOD = "PreviewPurge";

/** Sample messages a caller may ask for: each is a whole MessageSummary in one response. */
export const MAX_SAMPLE = 1000;
const DEFAULT_SAMPLE = 20;

export const previewPurge: StreamRpc<PreviewPurgeRequest, PreviewPurgeResponse> = {
  role: "admin",
  async handle(request, ctx, send) {
    const env = purgeEnvironmentOf(ctx, METHOD);
    // Refuses an empty filter (it selects nothing) and a pattern the agent cannot run, before any scan.
    requestSelection(METHOD, request.filter, Math.floor(Date.now() / 1000));
    const mode = purgeModeFromWire(request.mode);
    if (mode === undefined) {
      throw new RpcError(status.INVALID_ARGUMENT, `${METHOD}: mode ${request.mode} is not a purge mode`);
    }
    if (request.sampleSize > MAX_SAMPLE) {
      throw new RpcError(
        status.INVALID_ARGUMENT,
        `${METHOD}: sample_size ${request.sampleSize} is above ${MAX_SAMPLE}`,
      );
    }
    const keepAlive = startKeepAlive(() => send({}));
    try {
      const plan = await previewEngine(
        env,
        {
          filter: filterFromWire(request.filter ?? { criteria: [] }),
          mode,
          quarantine: !request.noQuarantine,
          reason: request.reason,
          who: ctx.caller,
          sampleSize: request.sampleSize > 0 ? request.sampleSize : DEFAULT_SAMPLE,
        },
        async (message) => {
          if (ctx.signal.aborted) throw cancelled(METHOD);
          if (!request.includeMessages) return;
          await send({ message: { message: messageToWire(message) } });
          keepAlive.sent();
        },
      );
      await send({ summary: planSummaryToWire(plan) });
    } finally {
      keepAlive.stop();
    }
  },
};
