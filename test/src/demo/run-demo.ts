// `npm run demo`: a three-host qmail fleet on this machine, asked through qmfleet as an operator
// would. It writes demo-fleet/ (queues of a few thousand messages each, with a "failure notice"
// bounce storm to support@abcde.net carrying ISO-2022-JP subjects; a CA and certificates; an
// inventory), starts three real qmfleet-agent processes on free loopback ports with mutual TLS,
// runs each step below with the built qmfleet command and prints what it prints, and stops the
// agents whatever happens (error, Ctrl-C).
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
  /** qmfleet's arguments after --inventory FILE. */
  args: string[];
}

const STEPS: Step[] = [
  { say: "Queue statistics of the whole fleet (qmHandle -s, every host at once)", args: ["-s"] },
  {
    say: "The same for the Tokyo hosts only, as one JSON document for scripts",
    args: ["--tags", "tokyo", "-s", "--json"],
  },
];

const FLEET_DIR = join(REPO_ROOT, "demo-fleet");

// `npm run demo` runs the build (test/dist/demo/run-demo.js) and so the built commands; run from
// its source (node --conditions=qmfleet-source --import tsx test/src/demo/run-demo.ts) it uses
// the commands' sources, with no build.
const ENTRY: Entry = import.meta.url.endsWith(".ts") ? "source" : "dist";

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function runDemo(agents: AgentProcess[]): Promise<void> {
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
    agents.push(await startAgentProcess({ queue: summary.root, certs, entry: ENTRY }));
    say(`  ${host.name}: qmfleet-agent listening on ${agents[agents.length - 1]?.address} (mutual TLS)`);
  }

  const inventory = await writeInventory(
    join(FLEET_DIR, "fleet.yaml"),
    certs,
    HOSTS.map((host, i) => ({ name: host.name, address: agents[i]?.address ?? "", tags: host.tags })),
  );
  const shown = relative(process.cwd(), inventory);

  for (const step of STEPS) {
    say(`\n# ${step.say}`);
    say(`$ qmfleet --inventory ${shown} ${step.args.join(" ")}`);
    const result = await runCli(["--inventory", inventory, ...step.args], ENTRY);
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    if (result.code !== 0) {
      throw new Error(`qmfleet exited with status ${result.code}`);
    }
  }
}

async function main(): Promise<number> {
  // Output piped into `head` that has closed: keep going quietly, so the agents still get stopped.
  process.stdout.on("error", () => {});
  const agents: AgentProcess[] = [];
  const stopAgents = () => Promise.all(agents.map((a) => a.stop()));
  // Ctrl-C: stop the agents before leaving, never leave them running.
  process.once("SIGINT", () => {
    say("\ninterrupted: stopping the agents");
    stopAgents().finally(() => process.exit(130));
  });
  try {
    await runDemo(agents);
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
      `\nAgents stopped. The fleet's files stay in ${relative(process.cwd(), FLEET_DIR) || "."}/ until the next run.`,
    );
  }
}

process.exitCode = await main();
