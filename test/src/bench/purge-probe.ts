// One purge in a process of its own, for purge-bench.ts: preview then execute through the
// engine's public entry points (previewPurge, executePurge) exactly as the agent runs them, from
// the built code, then one JSON line (PurgeProbeResult) with the phases' wall times, the
// process's CPU time and its peak resident memory (VmHWM).
//
//   node purge-probe.js '<PurgeProbeJob as JSON>'
//
// Live mode: executePurge waits for retirement at most its default 60 s (what an operator
// gets); messages still awaiting retirement then are watched here until their mess files are
// gone (qmail-send finishing the retry pass the ALRM started), so the result also says when
// the last one retired.

import * as fs from "node:fs";
import * as path from "node:path";
import {
  DEFAULT_QMAIL_SEND_CONFIG,
  detectLayout,
  executePurge,
  type Filter,
  type PurgeMode,
  type PurgeReport,
  previewPurge,
} from "@qmfleet/agent";
import { peakRssMB } from "./harness.js";

export interface PurgeProbeJob {
  queueRoot: string;
  stateDir: string;
  quarantineDir: string;
  mode: PurgeMode;
  /** Keep a copy of each message (the engine's default) or delete for good. */
  quarantine: boolean;
  filter: Filter;
  /** After executePurge returns, how long to keep watching messages awaiting retirement. */
  watchMs: number;
}

export interface PurgeProbeResult {
  matched: number;
  previewMs: number;
  executeMs: number;
  /** From the start of the preview until the last planned message left the queue; null: some never did. */
  untilLastRetiredMs: number | null;
  /** Live: neutralized messages not retired when executePurge returned. */
  awaitingAtReturn: number;
  /** Live: of those, still in the queue when the watch ended. */
  neverRetired: number;
  report: PurgeReport;
  /** Live: from the start of executePurge to the last message neutralized (then it waits for retirement). */
  neutralizeMs: number;
  /**
   * CPU seconds of this process: the preview; the neutralizing part of executePurge (live);
   * executePurge (its retirement wait included); all, this probe's own watch included.
   */
  previewCpuSeconds: number;
  neutralizeCpuSeconds: number;
  executeCpuSeconds: number;
  /** VmHWM after the preview, and at the end (all threads). */
  previewPeakRssMB: number;
  peakRssMB: number;
  cpuSeconds: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function run(job: PurgeProbeJob): Promise<PurgeProbeResult> {
  const env = {
    queueRoot: job.queueRoot,
    stateDir: job.stateDir,
    quarantineDir: job.quarantineDir,
    qmailSend: { ...DEFAULT_QMAIL_SEND_CONFIG },
  };
  const started = performance.now();
  const plan = await previewPurge(env, {
    filter: job.filter,
    mode: job.mode,
    quarantine: job.quarantine,
    reason: "purge benchmark",
  });
  const previewMs = performance.now() - started;
  const previewPeakRssMB = peakRssMB();
  const previewCpuSeconds = cpuSeconds();

  // id -> when it left the queue (ms since start); neutralized-only ids stay undefined.
  const left = new Map<string, number | undefined>();
  const executeStarted = performance.now();
  let neutralizeMs = 0;
  let neutralizeCpuSeconds = 0;
  const report = await executePurge(env, plan.planId, { who: "bench" }, (o) => {
    if (o.outcome === "neutralized") {
      left.set(o.id, undefined);
      neutralizeMs = performance.now() - executeStarted;
      neutralizeCpuSeconds = cpuSeconds() - previewCpuSeconds;
    } else if (o.outcome === "retired" || o.outcome === "removed")
      left.set(o.id, performance.now() - started);
  });
  const executeMs = performance.now() - executeStarted;
  const executeCpuSeconds = cpuSeconds() - previewCpuSeconds;

  const layout = detectLayout(job.queueRoot);
  let awaiting = [...left].filter(([, at]) => at === undefined).map(([id]) => id);
  const awaitingAtReturn = awaiting.length;
  const watchUntil = performance.now() + job.watchMs;
  while (awaiting.length > 0 && performance.now() < watchUntil) {
    // Once a second: lstat-ing tens of thousands of files is CPU that qmail-send needs too.
    await sleep(1000);
    awaiting = awaiting.filter((id) => {
      const mess = path.join(layout.root, "mess", String(BigInt(id) % BigInt(layout.split)), id);
      let ino: bigint | undefined;
      try {
        ino = fs.lstatSync(mess, { bigint: true }).ino;
      } catch {
        ino = undefined;
      }
      if (ino?.toString() === id) return true;
      left.set(id, performance.now() - started);
      return false;
    });
  }
  const times = [...left.values()];
  return {
    matched: plan.matched,
    previewMs,
    executeMs,
    untilLastRetiredMs: awaiting.length > 0 ? null : times.reduce<number>((a, t) => Math.max(a, t ?? 0), 0),
    awaitingAtReturn,
    neverRetired: awaiting.length,
    report,
    previewPeakRssMB,
    peakRssMB: peakRssMB(),
    neutralizeMs,
    previewCpuSeconds,
    neutralizeCpuSeconds,
    executeCpuSeconds,
    cpuSeconds: cpuSeconds(),
  };
}

const job = JSON.parse(process.argv[2] ?? "{}") as PurgeProbeJob;
run(job).then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (error: unknown) => {
    process.stderr.write(`purge probe failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
