// `npm run demo`: a three-host qmail fleet on this machine, asked through qmfleet as an operator
// would. It writes demo-fleet/ (queues of a few thousand messages each, with a "failure notice"
// bounce storm to support@abcde.net carrying ISO-2022-JP subjects; a CA and certificates; an
// inventory), starts on each host the qmail-send stand-in (test/src/qmail-send: it holds
// lock/sendmutex, defers every delivery, retires messages as qmail-send does) and a real
// qmfleet-agent on a free loopback port with mutual TLS, runs each step below with the built
// qmfleet command and prints what it prints - ending with a live purge of the storm, qmail-send
// running throughout - and stops everything it started whatever happens (error, Ctrl-C).
//
// To show another query, add a step to STEPS.

import { rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { generateFleetCertificates } from "../certs.js";
import {
  type AgentProcess,
  type Entry,
  REPO_ROOT,
  runCli,
  startAgentProcess,
  writeInventory,
} from "../e2e/processes.js";
import { generateMixedQueue } from "../mixed-queue.js";
import { type StandIn, startQmailSend } from "../qmail-send/index.js";

interface DemoHost {
  name: string;
  tags: string[];
  messages: number;
  seed: number;
  split?: number;
  bigTodo?: boolean;
}

const HOSTS: DemoHost[] = [
  { name: "mx1", tags: ["tokyo", "outbound"], messages: 4000, seed: 11 },
  { name: "mx2", tags: ["tokyo"], messages: 2500, seed: 22, split: 31 },
  { name: "mx3", tags: ["osaka"], messages: 3000, seed: 33, bigTodo: true },
];

interface Step {
  say: string;
  /** qmfleet's arguments after --inventory FILE; `sample` is a HOST:ID:FINGERPRINT found by an earlier step. */
  args: string[] | ((sample: string) => string[]);
  /** Print at most this many lines of the output (and its last line), to keep the demo readable. */
  showLines?: number;
  /** The exit status the step shows (default 0). */
  status?: number;
}

const STEPS: Step[] = [
  { say: "Queue statistics of the whole fleet (qmHandle -s, every host at once)", args: ["-s"] },
  {
    say: "The same for the Tokyo hosts only, as one JSON document for scripts",
    args: ["--tags", "tokyo", "-s", "--json"],
  },
  {
    say: "What is filling the queues? Top senders, domains, subjects and client IPs, merged across hosts, and qshape",
    args: ["--summary", "--top", "5"],
  },
  {
    say: "The fleet's oldest messages: each host's 4 oldest, merged oldest first",
    args: ["-l", "--sort", "age", "--desc", "--limit", "4"],
  },
  {
    say: "qmHandle -S'failure notice', previewed: what a deletion would select on every host (nothing is deleted)",
    args: ["-Sfailure notice", "--dry-run"],
    showLines: 8,
  },
  {
    say: "A Japanese subject is found by its text, though it travels ISO-2022-JP encoded",
    args: ["-S配信失敗のお知らせ", "--dry-run"],
    showLines: 8,
  },
  {
    say: "One message of one host, with the fingerprint a listing gave (refused if the id was reused since)",
    args: (sample) => [`-m${sample}`, "--max-bytes", "400"],
  },
  { say: "Queue consistency of every host (orphans, odd entries, split disagreements)", args: ["--check"] },
  {
    say: "Without --yes a deletion is only previewed: every agent makes a plan (what matches, the mode, a sample) and nothing is deleted",
    args: ["-Sfailure notice", "-f<>"],
    showLines: 16,
  },
  {
    say: "--yes: previewed again, then exactly those plans executed, live - qmail-send keeps running, no downtime",
    args: ["-Sfailure notice", "-f<>", "--yes", "--reason", "demo"],
  },
  { say: "The fleet after the purge", args: ["-s"] },
  {
    say: "Every purged message was kept in its agent's quarantine (--restore HOST:ID puts one back)",
    args: ["--quarantine", "--hosts", "mx1"],
    showLines: 5,
  },
];

/** Lines of `text`: the first `max`, a count of those left out, and the last one (the totals). */
function clipped(text: string, max: number | undefined): string {
  const lines = text.trimEnd().split("\n");
  if (max === undefined || lines.length <= max + 1) return text;
  return `${lines.slice(0, max).join("\n")}\n  ... (${lines.length - max - 1} more lines)\n${lines.at(-1)}\n`;
}

const FLEET_DIR = join(REPO_ROOT, "demo-fleet");

// `npm run demo` runs the build (test/dist/demo/run-demo.js) and so the built commands; run from
// its source (node --conditions=qmfleet-source --import tsx test/src/demo/run-demo.ts) it uses
// the commands' sources, with no build.
const ENTRY: Entry = import.meta.url.endsWith(".ts") ? "source" : "dist";

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function runDemo(agents: AgentProcess[], standIns: StandIn[]): Promise<void> {
  await rm(FLEET_DIR, { recursive: true, force: true });
  say(`Writing a demo fleet into ${relative(process.cwd(), FLEET_DIR) || "."}/`);
  const certs = await generateFleetCertificates(join(FLEET_DIR, "pki"));
  say("  certificates: a fleet CA, an agent certificate, an operator (admin) and a read-only client");

  for (const host of HOSTS) {
    const summary = generateMixedQueue(join(FLEET_DIR, host.name, "queue"), {
      count: host.messages,
      seed: host.seed,
      ...(host.split ? { split: host.split } : {}),
      ...(host.bigTodo ? { bigTodo: true } : {}),
    });
    say(
      `  ${host.name}: ${summary.messages} messages, ${summary.storm} of them "failure notice" to support@abcde.net`,
    );
    const qmailSend = await startQmailSend(summary.root);
    standIns.push(qmailSend);
    say(`  ${host.name}: qmail-send (stand-in) running, pid ${qmailSend.pid}`);
    agents.push(await startAgentProcess({ queue: summary.root, certs, entry: ENTRY }));
    say(`  ${host.name}: qmfleet-agent listening on ${agents[agents.length - 1]?.address} (mutual TLS)`);
  }

  const inventory = await writeInventory(
    join(FLEET_DIR, "fleet.yaml"),
    certs,
    HOSTS.map((host, i) => ({ name: host.name, address: agents[i]?.address ?? "", tags: host.tags })),
  );
  const shown = relative(process.cwd(), inventory);
  const sample = await sampleMessage(inventory);

  for (const step of STEPS) {
    const args = typeof step.args === "function" ? step.args(sample) : step.args;
    say(`\n# ${step.say}`);
    say(`$ qmfleet --inventory ${shown} ${args.map(shellWord).join(" ")}`);
    const result = await runCli(["--inventory", inventory, ...args], ENTRY);
    process.stdout.write(clipped(result.stdout, step.showLines));
    process.stderr.write(result.stderr);
    if (result.code !== (step.status ?? 0)) {
      throw new Error(`qmfleet exited with status ${result.code}`);
    }
  }
  say("\n# What each qmail-send logged meanwhile (it retired the purged messages itself)");
  for (const [i, qmailSend] of standIns.entries()) {
    const log = qmailSend.log();
    const ended = log.filter((line) => line.startsWith("end msg ")).length;
    const warnings = log.filter((line) => line.includes("warning:")).length;
    say(
      `  ${HOSTS[i]?.name}: ${ended} messages retired ("end msg": the purged ones, and any left with nothing to deliver), ${warnings} warnings; still running: ${qmailSend.running()}`,
    );
  }
}

/** A bounce of the storm on mx2, as HOST:ID:FINGERPRINT, from a JSON listing. */
async function sampleMessage(inventory: string): Promise<string> {
  const result = await runCli(
    ["--inventory", inventory, "--hosts", "mx2", "-Sfailure notice", "--dry-run", "--limit", "1", "--json"],
    ENTRY,
  );
  const doc = JSON.parse(result.stdout) as { messages: { host: string; id: string; fingerprint: string }[] };
  const first = doc.messages[0];
  if (!first) throw new Error(`no "failure notice" message on mx2 to show:\n${result.stderr}`);
  return `${first.host}:${first.id}:${first.fingerprint}`;
}

/** An argument as an operator would type it in a shell (qmHandle style: -S'failure notice'). */
function shellWord(arg: string): string {
  const flag = /^(-[A-Za-z])(.+)$/.exec(arg);
  if (flag && /[^\w@.:/-]/.test(flag[2] ?? "")) return `${flag[1]}'${flag[2]}'`;
  return /[^\w@.:/=,-]/.test(arg) ? `'${arg}'` : arg;
}

async function main(): Promise<number> {
  // Output piped into `head` that has closed: keep going quietly, so the agents still get stopped.
  process.stdout.on("error", () => {});
  const agents: AgentProcess[] = [];
  const standIns: StandIn[] = [];
  const stopAgents = async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(standIns.map((s) => s.dispose()));
  };
  // Ctrl-C: stop the agents before leaving, never leave them running.
  process.once("SIGINT", () => {
    say("\ninterrupted: stopping the agents");
    stopAgents().finally(() => process.exit(130));
  });
  try {
    await runDemo(agents, standIns);
    return 0;
  } catch (error) {
    process.stderr.write(`demo failed: ${(error as Error).message}\n`);
    for (const agent of agents) {
      process.stderr.write(agent.log());
    }
    return 1;
  } finally {
    await stopAgents();
    say(
      `\nAgents and qmail-send stand-ins stopped. The fleet's files stay in ${relative(process.cwd(), FLEET_DIR) || "."}/ until the next run.`,
    );
  }
}

process.exitCode = await main();
