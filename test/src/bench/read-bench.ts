// The read side against the tools an admin would otherwise use, in one run on the same queue
// and the same warm cache (issue 3): qmfleet's header search against `grep -rlE` over mess/, its
// listing against a raw grep of the subjects, its statistics against qmail-qstat's
// `find | wc -l`, and the agent's peak memory. Each qmfleet operation runs in its own process
// (read-probe.ts) through the engine's public entry points, from the built code.

import {
  median,
  type ProbeResult,
  type Row,
  renderTable,
  runProbe,
  seconds,
  type ThreadCpu,
  timeCommand,
} from "./harness.js";
import { type BenchQueue, countLabel, ensureQueue } from "./queues.js";

export interface ReadBenchOptions {
  sizes: number[];
  seed: number;
  /** Timed runs of each operation per size (the median is shown). Default: 3 up to 100k, 1 above. */
  runs?: number;
  log: (line: string) => void;
}

/** The raw header search of the bench: the storm's subject, as an operator would type it. */
export const SEARCH = "^Subject: failure notice";

const GOALS = {
  searchRatio: 1.2,
  listMs: 1500,
  statsMs: 2000,
  rssMB: 256,
};

interface Measured {
  qmfleet: ProbeResult;
  baselineMs: number;
  baselineOutput: string;
}

/** Runs the operation and its baseline in turn, `runs` times, and keeps the medians. */
function measure(runs: number, probe: () => ProbeResult, baseline: string): Measured {
  const probes: ProbeResult[] = [];
  const baselines: number[] = [];
  let baselineOutput = "";
  for (let i = 0; i < runs; i++) {
    const b = timeCommand(baseline);
    baselines.push(b.ms);
    baselineOutput = b.output;
    probes.push(probe());
  }
  const ms = median(probes.map((p) => p.ms));
  const qmfleet = probes.find((p) => p.ms === ms) as ProbeResult;
  return { qmfleet, baselineMs: median(baselines), baselineOutput };
}

function cpuText(cpu: ThreadCpu): string {
  return `JavaScript ${seconds(cpu.javascript)}, native reader ${seconds(cpu.reader)}, others (V8's garbage collection and compiling) ${seconds(cpu.other)}`;
}

/** A goal of the issue at this size: what it says, and whether the figure meets it. */
interface Goal {
  text: string;
  met: boolean;
}

function verdict(goal: Goal | undefined): string {
  return goal === undefined ? "" : goal.met ? "yes" : "NO";
}

function sizeSection(
  q: BenchQueue,
  runs: number,
  log: (line: string) => void,
): { table: string; notes: string[] } {
  const root = q.root;
  const mess = `${root}/mess`;
  const probe =
    (...args: string[]) =>
    () =>
      runProbe("read-probe.js", [root, ...args]);
  const grep = `grep -rlE '${SEARCH}' ${mess} | wc -l`;
  const subjects = `grep -rhE -m1 '^Subject:' ${mess} | wc -l`;
  const qstat = `find ${mess} -type f -print | wc -l; find ${root}/todo -print | wc -l`;
  log(`  warming the cache (grep, find, one listing)`);
  timeCommand(grep);
  timeCommand(qstat);
  runProbe("read-probe.js", [root, "list"]);
  const big = q.messages >= 1_000_000;
  const at100k = q.messages === 100_000;
  // The whole search only up to 100k: at a million it is minutes, and no goal is set for it.
  const variants = q.messages <= 100_000;
  const skipped = (): Measured => ({
    qmfleet: { ms: Number.NaN, count: 0, peakRssMB: 0 },
    baselineMs: Number.NaN,
    baselineOutput: "",
  });
  log(`  header search`);
  const ids = measure(runs, probe("regex-ids", SEARCH), grep);
  const search = variants ? measure(runs, probe("regex", SEARCH), grep) : skipped();
  log(`  listing`);
  const list = measure(runs, probe("list"), subjects);
  const listAgain = measure(runs, probe("list-again"), subjects);
  log(`  stats`);
  const stats = measure(runs, probe("stats"), qstat);
  const counts = measure(runs, probe("stats-counts"), qstat);
  const cached = measure(runs, probe("stats-cached"), qstat);
  const ratio = ids.qmfleet.ms / ids.baselineMs;
  const peak = Math.max(
    ...[ids, search, list, listAgain, stats, counts, cached].map((m) => m.qmfleet.peakRssMB),
  );
  const row = (operation: string, m: Measured, goal?: Goal): Row =>
    Number.isNaN(m.qmfleet.ms)
      ? { operation, qmfleet: "(not run)", baseline: "", ratio: "", goal: goal?.text ?? "", met: "" }
      : {
          operation,
          qmfleet: seconds(m.qmfleet.ms),
          baseline: seconds(m.baselineMs),
          ratio: `${(m.qmfleet.ms / m.baselineMs).toFixed(2)}x`,
          goal: goal?.text ?? "",
          met: verdict(goal),
        };
  const statsGoal = (ms: number): Goal | undefined =>
    big ? { text: `<= ${seconds(GOALS.statsMs)}`, met: ms <= GOALS.statsMs } : undefined;
  const rssGoal: Goal | undefined = big
    ? { text: `<= ${GOALS.rssMB} MB`, met: peak <= GOALS.rssMB }
    : undefined;
  const rows: Row[] = [
    row(
      `header regex -H '${SEARCH}', ids (-N) vs grep -rlE`,
      ids,
      at100k ? { text: `<= ${GOALS.searchRatio}x grep`, met: ratio <= GOALS.searchRatio } : undefined,
    ),
    row("the same search, matches listed whole", search),
    row(
      "list, subjects decoded vs grep -rhE -m1 ^Subject:",
      list,
      at100k ? { text: `<= ${seconds(GOALS.listMs)}`, met: list.qmfleet.ms <= GOALS.listMs } : undefined,
    ),
    row("the same listing again in the process (a running agent's)", listAgain),
    row("stats: counts + bytes + oldest vs qmail-qstat (find, wc -l)", stats, statsGoal(stats.qmfleet.ms)),
    row("stats: counts only vs qmail-qstat (find, wc -l)", counts),
    row("stats: full, 2nd call with StatsCache vs qmail-qstat", cached, statsGoal(cached.qmfleet.ms)),
    {
      operation: "agent peak RSS (VmHWM), default settings",
      qmfleet: `${peak} MB`,
      baseline: "",
      ratio: "",
      goal: rssGoal?.text ?? "",
      met: verdict(rssGoal),
    },
  ];
  const [messFiles, todoEntries] = stats.baselineOutput.split("\n");
  const s = stats.qmfleet.detail as Record<string, number>;
  const notes = [
    `matches: qmfleet ${ids.qmfleet.count}, grep ${ids.baselineOutput} (the same set: the pattern is anchored to a header line)`,
    `listed: ${list.qmfleet.count} messages (grep printed ${list.baselineOutput} raw Subject lines)`,
    `listing CPU by thread (the median run): ${cpuText(list.qmfleet.detail?.cpuMs as ThreadCpu)}; listed again: ${cpuText(listAgain.qmfleet.detail?.cpuMs as ThreadCpu)}`,
    `qmail-qstat: find counts ${messFiles} mess files, ${Number(todoEntries) - 1} todo; qmfleet ${s.messagesInQueue} and ${s.notPreprocessed}; bytes ${s.bytes} (builder wrote ${q.bytes}), oldest birth ${s.oldestBirth} (builder: ${q.oldestBirth})`,
    `StatsCache: the first call (filling it) took ${seconds(Number(cached.qmfleet.detail?.firstMs))}`,
    `peak RSS per operation: ${[
      ["search ids", ids],
      ["search", search],
      ["list", list],
      ["list again", listAgain],
      ["stats", stats],
      ["counts", counts],
      ["cached", cached],
    ]
      .filter(([, m]) => !Number.isNaN((m as Measured).qmfleet.ms))
      .map(([name, m]) => `${name} ${(m as Measured).qmfleet.peakRssMB} MB`)
      .join(", ")}`,
  ];
  return { table: renderTable(rows), notes };
}

/**
 * Builds or reuses each queue, then measures it; returns the report (Markdown). Each size's
 * section also goes to opts.log as soon as it is measured: a million takes tens of minutes.
 */
export function readBench(opts: ReadBenchOptions): string {
  const out: string[] = [];
  for (const count of opts.sizes) {
    const q = ensureQueue(count, opts.seed, opts.log);
    const runs = opts.runs ?? (count <= 100_000 ? 3 : 1);
    opts.log(`${countLabel(count)} messages (${q.root}), ${runs} run(s) each`);
    const { table, notes } = sizeSection(q, runs, opts.log);
    const section = [
      `### ${count.toLocaleString("en-US")} messages (seed ${opts.seed}, split ${q.split}, median of ${runs})`,
      "",
      table,
      "",
      ...notes.map((n) => `- ${n}`),
      "",
    ].join("\n");
    opts.log(section);
    out.push(section);
  }
  return out.join("\n");
}
