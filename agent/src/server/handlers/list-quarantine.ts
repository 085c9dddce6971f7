// ListQuarantine: the messages purges kept (engine/quarantine.ts), oldest first, one entry per
// response. Read role: it shows envelopes and subjects, as a listing of the queue does.

import type { ListQuarantineRequest, ListQuarantineResponse } from "@qmfleet/proto";
import { listQuarantine as listEngine } from "../../engine/purge.js";
import { purgeEnvironmentOf } from "../purge-environment.js";
import type { StreamRpc } from "../rpc.js";
import { cancelled } from "../selection.js";
import { quarantineEntryToWire } from "../wire.js";

const METHOD = "ListQuarantine";

export const listQuarantine: StreamRpc<ListQuarantineRequest, ListQuarantineResponse> = {
  role: "read",
  async handle(_request, ctx, send) {
    const env = purgeEnvironmentOf(ctx, METHOD);
    for (const entry of listEngine(env)) {
      if (ctx.signal.aborted) throw cancelled(METHOD);
      await send({ entry: quarantineEntryToWire(entry) });
    }
  },
};
