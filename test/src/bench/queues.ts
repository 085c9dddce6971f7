// The queues the benchmarks read: mixed queues from the queue builder, built once and reused,
// keyed by count and seed under /tmp/qmfleet-bench-<count>[-seed<seed>] (a million messages take
// ~6 minutes to write, so a run must not rebuild one it already has). A queue is reused only
// when its summary.json says it was finished with the same count and seed: the summary is
// written last, so an interrupted build is never mistaken for a complete one.

import * as fs from "node:fs";
import * as path from "node:path";
import { generateMixedQueue, type MixedQueueSummary } from "../mixed-queue.js";

export interface BenchQueue extends MixedQueueSummary {
  seed: number;
  split: number;
  /** The `now` the queue was generated with: birth times are in the 7 days before it. */
  now: number;
  /** Seconds the original build took. */
  generatedIn: string;
}

/** "100k", "1m", "2500": how a count names its directory. */
export function countLabel(count: number): string {
  if (count % 1_000_000 === 0) return `${count / 1_000_000}m`;
  if (count % 1_000 === 0) return `${count / 1_000}k`;
  return String(count);
}

/** Where the queue of this count and seed lives (the default seed 1 keeps the short name). */
export function benchDir(count: number, seed: number, base = "/tmp"): string {
  return path.join(base, `qmfleet-bench-${countLabel(count)}${seed === 1 ? "" : `-seed${seed}`}`);
}

function readSummary(file: string): BenchQueue | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as BenchQueue;
  } catch {
    return undefined;
  }
}

/**
 * The queue of `count` messages from `seed` under `base`, built when missing or unfinished.
 * `log` hears about a build (it takes minutes at a million).
 */
export function ensureQueue(
  count: number,
  seed: number,
  log: (line: string) => void,
  base = "/tmp",
): BenchQueue {
  const dir = benchDir(count, seed, base);
  const summaryFile = path.join(dir, "summary.json");
  const have = readSummary(summaryFile);
  if (have && have.messages === count && have.seed === seed && fs.existsSync(have.root)) return have;
  log(`building ${count} messages (seed ${seed}) in ${dir} ...`);
  // An unfinished build (no summary) is thrown away: the builder wants a fresh root.
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const now = Math.floor(Date.now() / 1000);
  const split = 23;
  const started = performance.now();
  const summary = generateMixedQueue(path.join(dir, "queue"), {
    count,
    seed,
    split,
    now,
    progress: (n) => {
      if (n % 100_000 === 0) log(`  ${n} written`);
    },
  });
  const queue: BenchQueue = {
    ...summary,
    seed,
    split,
    now,
    generatedIn: ((performance.now() - started) / 1000).toFixed(1),
  };
  fs.writeFileSync(summaryFile, JSON.stringify(queue, null, 2));
  log(`  built in ${queue.generatedIn} s`);
  return queue;
}
