import type { GetStatsRequest, GetStatsResponse } from "@qmfleet/proto";
import type { UnaryRpc } from "../rpc.js";
import { statsToWire } from "../wire.js";

export const getStats: UnaryRpc<GetStatsRequest, GetStatsResponse> = {
  role: "read",
  async handle(_request, ctx) {
    const now = Math.floor(Date.now() / 1000);
    const stats = await ctx.agent.stats.get(now);
    return { stats: statsToWire(stats), takenAtUnix: now };
  },
};
