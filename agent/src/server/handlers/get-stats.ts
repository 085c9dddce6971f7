import type { GetStatsRequest, GetStatsResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { queueStats } from "../../engine/stats.js";
import type { UnaryRpc } from "../rpc.js";
import { statsToWire } from "../wire.js";

export const getStats: UnaryRpc<GetStatsRequest, GetStatsResponse> = {
  role: "read",
  async handle(_request, ctx) {
    const layout = await detectLayout(ctx.agent.queueRoot);
    const now = Math.floor(Date.now() / 1000);
    const stats = await queueStats(layout, now);
    return { stats: statsToWire(stats), takenAtUnix: now };
  },
};
