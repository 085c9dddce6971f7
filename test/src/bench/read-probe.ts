// One agent read operation in a process of its own, for read-bench.ts: the operation runs
// through the engine's public entry points exactly as the agent runs them, and the process
// then prints one JSON line (harness.ts ProbeResult) with its wall time and its peak resident
// memory (VmHWM: all threads, the thread pool included).
//
//   node read-probe.js <queue root> regex <pattern>      messages whose header lines match (-H)
//   node read-probe.js <queue root> regex-ids <pattern>  the same, naming them only (-N):
//                                                        envelope files unread, headers not decoded
//   node read-probe.js <queue root> list                 every message, subjects decoded (and the
//                                                        CPU each thread spent on it)
//   node read-probe.js <queue root> list-again           the same listing a second time in the process,
//                                                        as a running agent serves it (code compiled)
//   node read-probe.js <queue root> stats             counts, bytes and oldest, nothing cached
//   node read-probe.js <queue root> stats-counts      qmail-qstat's numbers and the per-state counts only
//   node read-probe.js <queue root> stats-cached      a second call with a StatsCache (the first one fills it)

import {
  detectLayout,
  type QueueLayout,
  queueStats,
  type ScanSelection,
  StatsCache,
  scanQueue,
} from "@qmfleet/agent";
import { type ProbeResult, peakRssMB, threadCpuMs } from "./harness.js";

/** One full listing, subjects decoded: its time, and the CPU each thread spent on it. */
async function listing(layout: QueueLayout): Promise<ProbeResult> {
  const started = performance.now();
  let count = 0;
  let subjectChars = 0;
  const before = threadCpuMs();
  for await (const { message } of scanQueue(layout)) {
    count++;
    subjectChars += message.headers.subject.length;
  }
  const ms = performance.now() - started;
  const after = threadCpuMs();
  const cpuMs = {
    javascript: after.javascript - before.javascript,
    reader: after.reader - before.reader,
    other: after.other - before.other,
  };
  return { ms, count, peakRssMB: peakRssMB(), detail: { subjectChars, cpuMs } };
}

async function run(root: string, op: string, args: string[]): Promise<ProbeResult> {
  const layout = detectLayout(root);
  const now = Math.floor(Date.now() / 1000);
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  switch (op) {
    case "regex":
    case "regex-ids": {
      const select: ScanSelection = {
        filter: {
          criteria: [{ kind: "headerRegex", pattern: { source: args[0] ?? "", caseInsensitive: false } }],
        },
        now,
      };
      let count = 0;
      const whole = op === "regex";
      const opts = { select, envelope: whole, headers: whole };
      for await (const _ of scanQueue(layout, opts)) count++;
      return { ms: elapsed(), count, peakRssMB: peakRssMB() };
    }
    case "list":
      return listing(layout);
    case "list-again":
      await listing(layout);
      return listing(layout);
    case "stats":
    case "stats-counts": {
      const s = await queueStats(layout, now, { detail: op === "stats" });
      return { ms: elapsed(), count: s.messagesInQueue, peakRssMB: peakRssMB(), detail: { ...s } };
    }
    case "stats-cached": {
      const cache = new StatsCache(layout.root);
      await queueStats(layout, now, { cache });
      const firstMs = elapsed();
      const second = performance.now();
      const s = await queueStats(layout, now, { cache });
      const ms = performance.now() - second;
      return { ms, count: s.messagesInQueue, peakRssMB: peakRssMB(), detail: { ...s, firstMs } };
    }
    default:
      throw new Error(
        `unknown operation ${op} (regex, regex-ids, list, list-again, stats, stats-counts, stats-cached)`,
      );
  }
}

const [root, op, ...args] = process.argv.slice(2);
if (!root || !op) throw new Error("usage: read-probe.js <queue root> <operation> [pattern]");
process.stdout.write(`${JSON.stringify(await run(root, op, args))}\n`);
