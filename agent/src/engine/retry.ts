// Retry sooner and send now (qmHandle -t and -a; qmail-queue.md §7d). Not deletion.
//
// -t: qmail-send schedules retries from a message's birth time, the mtime of info/<id>
// (nextretry = birth + (sqrt(age) + 20)^2 s for remote deliveries), so setting that mtime to now
// makes the next retries come sooner - and restarts the queue lifetime too (queuelifetime,
// 7 days by default, counts from the same time). Like qmHandle, only preprocessed messages with
// remote recipients still to deliver are changed. qmail-send keeps its schedule in memory, so
// ALRM follows: the matched messages are retried now and then rescheduled from the new birth.
// -a: ALRM alone: every queued message is retried now.

import * as fs from "node:fs";
import { withAgentLock } from "./agent-lock.js";
import { queuePath } from "./layout.js";
import type { Filter, QueueLayout } from "./model.js";
import { alarmQmailSend } from "./qmail-send.js";
import { scanQueue } from "./scan.js";

export interface RetryResult {
  matched: number;
  /** info files whose mtime was set to now. */
  changed: number;
  /** ALRM was sent to qmail-send. */
  signaled: boolean;
  pid: number;
}

/** -t: matched preprocessed messages with remote recipients to deliver get info mtime = now, then ALRM. */
export async function retrySooner(
  layout: QueueLayout,
  filter: Filter,
  opts: { stateDir: string; dryRun?: boolean; now?: number },
): Promise<RetryResult> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const result: RetryResult = { matched: 0, changed: 0, signaled: false, pid: 0 };
  const work = async () => {
    for await (const candidate of scanQueue(layout, { headers: false, select: { filter, now } })) {
      result.matched++;
      const m = candidate.message;
      const eligible =
        (m.state === "preprocessed" || m.state === "bouncing") &&
        m.recipients.some((r) => r.channel === "remote" && !r.done);
      if (!eligible || opts.dryRun) continue;
      try {
        fs.utimesSync(queuePath(layout, m.paths.info), now, now);
        result.changed++;
      } catch (error) {
        // Retired meanwhile: nothing to retry.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    if (result.changed > 0) Object.assign(result, sendNow(layout));
    return result;
  };
  return opts.dryRun ? work() : withAgentLock(opts.stateDir, layout.root, "retry sooner", work);
}

/** -a: ALRM to qmail-send. */
export function sendNow(layout: QueueLayout): { signaled: boolean; pid: number } {
  const pid = alarmQmailSend(layout.root);
  return { signaled: pid !== undefined, pid: pid ?? 0 };
}
