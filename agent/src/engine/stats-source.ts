// Statistics for a long-running agent: one StatsCache per queue, so that a call at a million
// messages lstats only what is new since the last (stats.ts), and one pass at a time. Callers
// who ask while a pass runs share it: in an incident several operators (and every fleet query)
// ask at once, and N passes over a million files would each run N times slower, on the disk
// qmail-send needs. The cache is not safe for two passes at once anyway.

import { detectLayout } from "./layout.js";
import type { QueueStats } from "./model.js";
import { queueStats, StatsCache } from "./stats.js";

export class QueueStatsSource {
  private readonly cache: StatsCache;
  private running: Promise<QueueStats> | undefined;

  constructor(readonly root: string) {
    this.cache = new StatsCache(root);
  }

  /** The queue's statistics, with the oldest message's age as of `now` (unix seconds). */
  async get(now = Math.floor(Date.now() / 1000)): Promise<QueueStats> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    const stats = await this.running;
    return { ...stats, oldestAgeSeconds: stats.oldestBirth === 0 ? 0 : Math.max(0, now - stats.oldestBirth) };
  }

  private async pass(): Promise<QueueStats> {
    // The layout again each time: split directories can be fixed or broken between two calls.
    const layout = detectLayout(this.root);
    return queueStats(layout, Math.floor(Date.now() / 1000), { cache: this.cache });
  }
}
