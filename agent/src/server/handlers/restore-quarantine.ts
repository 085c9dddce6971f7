// RestoreQuarantine: re-injects quarantined messages through qmail-queue (engine/quarantine.ts),
// under the queue's lock; one response per id, ok or the reason it stayed in quarantine. Each
// restore is audited by the engine, with the certificate's CN as who.

import { status } from "@grpc/grpc-js";
import type { RestoreQuarantineRequest, RestoreQuarantineResponse } from "@qmfleet/proto";
import { restoreQuarantined } from "../../engine/purge.js";
import { purgeEnvironmentOf } from "../purge-environment.js";
import type { StreamRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";

const METHOD = "RestoreQuarantine";

export const restoreQuarantine: StreamRpc<RestoreQuarantineRequest, RestoreQuarantineResponse> = {
  role: "admin",
  async handle(request, ctx, send) {
    const env = purgeEnvironmentOf(ctx, METHOD);
    if (request.quarantineIds.length === 0) {
      throw new RpcError(
        status.INVALID_ARGUMENT,
        `${METHOD} needs quarantine_ids: the ids ListQuarantine shows`,
      );
    }
    let streaming = true;
    // Like a purge, a restore started goes to its end; a caller gone only stops the answers.
    await ctx.agent.changes.run(() =>
      restoreQuarantined(
        env,
        request.quarantineIds,
        { allRecipients: request.allRecipients, who: ctx.caller, reason: request.reason },
        async (result) => {
          if (!streaming) return;
          try {
            await send({ quarantineId: result.quarantineId, ok: result.ok, error: result.error ?? "" });
          } catch {
            streaming = false;
          }
        },
      ),
    );
  },
};
