// RetrySooner (qmHandle -t): the matched messages with remote recipients still to deliver get
// their birth time (info mtime) set to now, then qmail-send gets ALRM (engine/retry.ts). Not a
// deletion, but it changes the queue - it also restarts each message's queue lifetime - so it
// needs the admin role and is audited.

import type { RetrySoonerRequest, RetrySoonerResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { retrySooner as retryEngine } from "../../engine/retry.js";
import { purgeEnvironmentOf } from "../purge-environment.js";
import type { UnaryRpc } from "../rpc.js";
import { requestSelection } from "../selection.js";

const METHOD = "RetrySooner";

export const retrySooner: UnaryRpc<RetrySoonerRequest, RetrySoonerResponse> = {
  role: "admin",
  async handle(request, ctx) {
    const env = purgeEnvironmentOf(ctx, METHOD);
    const { filter } = requestSelection(METHOD, request.filter, Math.floor(Date.now() / 1000));
    const layout = detectLayout(env.queueRoot);
    const result = await ctx.agent.changes.run(() =>
      retryEngine(layout, filter, { stateDir: env.stateDir, dryRun: request.dryRun }),
    );
    if (!request.dryRun) {
      env.audit?.append({
        event: "retry-sooner",
        who: ctx.caller,
        reason: request.reason,
        filter,
        matched: result.matched,
        changed: result.changed,
        signaled: result.signaled,
        pid: result.pid,
      });
    }
    return { matched: result.matched, changed: result.changed, signaled: result.signaled };
  },
};
