// What every benchmark of the suite uses: a baseline command timed from outside, an agent
// operation run in a child process that reports its own wall time and peak memory, and the
// table they are printed in. The agent is a long-running process, so an operation's time is
// measured inside the child (node's start-up, ~0.1 s, is not part of a request); a baseline
// command is timed from spawn to exit (grep and find start in a millisecond).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export interface Timed {
  ms: number;
  /** What the command printed, trimmed. */
  output: string;
}

/** Runs `sh -c command` and times it; a failure (grep's exit 1 aside: no match) is an error. */
export function timeCommand(command: string): Timed {
  const started = performance.now();
  const r = spawnSync("sh", ["-c", command], { encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
  const ms = performance.now() - started;
  if (r.status !== 0 && r.status !== 1) throw new Error(`${command} failed (${r.status}): ${r.stderr}`);
  return { ms, output: r.stdout.trim() };
}

/** This process's peak resident memory (VmHWM: all threads), for a probe to report. */
export function peakRssMB(): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1];
  return Math.round(Number(kb) / 1024);
}

/** CPU time so far of this process's threads, in ms: the JavaScript thread, the native reader's, and all others. */
export interface ThreadCpu {
  javascript: number;
  reader: number;
  /** V8's helpers (garbage collection, compiling), libuv's pool. */
  other: number;
}

/** ThreadCpu from /proc/self/task (clock ticks of 10 ms: utime + stime). */
export function threadCpuMs(): ThreadCpu {
  const cpu: ThreadCpu = { javascript: 0, reader: 0, other: 0 };
  for (const tid of fs.readdirSync("/proc/self/task")) {
    let stat: string;
    let name: string;
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      name = fs.readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
    } catch {
      continue; // a thread that ended meanwhile
    }
    // Fields after the ")" that ends the name: state is the first, utime the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = (Number(fields[11]) + Number(fields[12])) * 10;
    if (Number(tid) === process.pid) cpu.javascript += ms;
    else if (name === "qmfleet-reader") cpu.reader += ms;
    else cpu.other += ms;
  }
  return cpu;
}

/** What a probe child reports (see read-probe.ts). */
export interface ProbeResult {
  ms: number;
  /** Messages the operation yielded, or messagesInQueue for stats. */
  count: number;
  /** VmHWM of the child: its peak resident memory, all threads. */
  peakRssMB: number;
  /** Anything else the operation wants shown (stats numbers, lstat counts...). */
  detail?: Record<string, unknown>;
}

/** Runs `node <probe> ...args` from the built code beside this file and parses its JSON line. */
export function runProbe(probe: string, args: string[]): ProbeResult {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), probe);
  const r = spawnSync(process.execPath, [script, ...args], { encoding: "utf8", maxBuffer: 16 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${probe} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as ProbeResult;
}

/** Median of a few runs: one slow run (another job's burst on the shared VM) does not decide. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

export interface Row {
  operation: string;
  qmfleet: string;
  baseline: string;
  ratio: string;
  goal: string;
  met: string;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A Markdown table: it reads in a terminal and pastes into bench/README.md as is. */
export function renderTable(rows: Row[]): string {
  const head: Row = {
    operation: "operation",
    qmfleet: "qmfleet",
    baseline: "baseline",
    ratio: "ratio",
    goal: "goal",
    met: "met?",
  };
  const keys = Object.keys(head) as Array<keyof Row>;
  const width = (k: keyof Row) => Math.max(...[head, ...rows].map((r) => r[k].length));
  const line = (r: Row) => `| ${keys.map((k) => r[k].padEnd(width(k))).join(" | ")} |`;
  const rule = `| ${keys.map((k) => "-".repeat(width(k))).join(" | ")} |`;
  return [line(head), rule, ...rows.map(line)].join("\n");
}
