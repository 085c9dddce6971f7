// `npm run bench` (root): builds, then runs the benchmarks from the built code and prints a
// report with the machine, the date and the load before and after (other jobs may share the
// machine: the load says how much to trust the figures). bench/README.md holds the results.
//
//   node test/dist/bench/run.js [read] [--sizes=100000,1000000] [--seed=1] [--runs=N]
//
// Each benchmark is one entry of BENCHMARKS; a purge benchmark (the bounce storm of the 100k
// queue purged with a qmail-send stand-in running) belongs beside `read`, on the same queues
// (queues.ts) and the same harness (harness.ts).

import { describeMachine, loadAverage } from "./machine.js";
import { purgeBench } from "./purge-bench.js";
import { readBench } from "./read-bench.js";

interface BenchArgs {
  sizes: number[];
  seed: number;
  runs: number | undefined;
  log: (line: string) => void;
}

const BENCHMARKS: Record<string, (args: BenchArgs) => string> = {
  read: (a) => readBench(a),
  purge: (a) => purgeBench(a),
};

function parseArgs(argv: string[]): { names: string[]; args: BenchArgs } {
  const names: string[] = [];
  const args: BenchArgs = {
    sizes: [100_000, 1_000_000],
    seed: 1,
    runs: undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  for (const arg of argv) {
    const [key, value = ""] = arg.split("=", 2) as [string, string?];
    if (key === "--sizes") args.sizes = value.split(",").map(Number);
    else if (key === "--seed") args.seed = Number(value);
    else if (key === "--runs") args.runs = Number(value);
    else if (arg in BENCHMARKS) names.push(arg);
    else throw new Error(`unknown argument ${arg} (benchmarks: ${Object.keys(BENCHMARKS).join(", ")})`);
  }
  if (args.sizes.some((n) => !Number.isSafeInteger(n) || n <= 0))
    throw new Error(`--sizes: positive counts, comma-separated`);
  return { names: names.length > 0 ? names : Object.keys(BENCHMARKS), args };
}

const { names, args } = parseArgs(process.argv.slice(2));
const machine = describeMachine();
const loadBefore = loadAverage();
const sections = names.map((name) => `## ${name}\n\n${(BENCHMARKS[name] as (a: BenchArgs) => string)(args)}`);
process.stdout.write(
  [
    `# qmfleet benchmarks, ${machine.date}`,
    "",
    `machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.kernel}, node ${machine.node}`,
    `load average at start: ${loadBefore}`,
    "",
    ...sections,
    `load average at end: ${loadAverage()}`,
    "",
  ].join("\n"),
);
