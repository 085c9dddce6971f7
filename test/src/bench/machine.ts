// What the figures were measured on: benchmarks on a shared 2-core VM mean little without the
// machine, the date and how loaded it was (other jobs run beside the benchmark there).

import * as fs from "node:fs";
import * as os from "node:os";

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: string;
  kernel: string;
  node: string;
}

export function describeMachine(): Machine {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  return {
    date: new Date().toISOString(),
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** The 1, 5 and 15 minute load averages, as uptime prints them. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
}
