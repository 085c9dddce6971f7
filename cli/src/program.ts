// The qmfleet command line: qmHandle's flags, run against every targeted host of an inventory.
// Flags take their value glued on as in qmHandle (`-h'abcde.net'` reaches us as `-habcde.net`),
// so commander's own -h (help) and -V (version) are moved to --help and --version: those letters
// belong to qmHandle. Each action flag is queued in the order given and run in that order.

import { createRequire } from "node:module";
import {
  type AgentClients,
  connectFleet,
  InventoryError,
  loadInventory,
  selectHosts,
} from "@qmfleet/controller";
import { Command, CommanderError, Option } from "commander";
import type { Action, ActionContext, ErrorOutput, Output } from "./actions/action.js";
import { statsAction } from "./actions/stats-action.js";
import { EXIT_HOST_FAILED, EXIT_OK, EXIT_USAGE } from "./exit-codes.js";
import { OUTPUT_FORMATS, type OutputFormat } from "./render.js";

const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

export interface Io {
  stdout: Output;
  stderr: ErrorOutput;
}

interface GlobalFlags {
  inventory?: string;
  hosts?: string;
  tags?: string;
  json?: boolean;
  format?: OutputFormat;
  timeout: string;
  concurrency: string;
}

class UsageError extends Error {}

const EPILOGUE = `
Exit status:
  0  every targeted host answered
  1  usage or configuration error: nothing was asked of any host
  2  at least one host failed, timed out, was unreachable, denied or cancelled
     (the hosts that answered are still reported)
  70 internal error (a bug in qmfleet)

Example:
  qmfleet --inventory fleet.yaml -s
  qmfleet --inventory fleet.yaml --tags tokyo -s --json`;

function buildProgram(io: Io, actions: Action[]): Command {
  const program = new Command("qmfleet")
    .description("qmHandle's flags across a whole fleet of qmail servers")
    .helpOption("--help", "show this help")
    .version(VERSION, "--version", "show qmfleet's version")
    .addOption(new Option("--inventory <file>", "fleet inventory (YAML)").env("QMFLEET_INVENTORY"))
    .option("--hosts <names>", "only these hosts (comma-separated names)")
    .option("--tags <tags>", "only hosts with any of these tags (comma-separated)")
    .addOption(new Option("--format <format>", "output format").choices(OUTPUT_FORMATS))
    .option("--json", "output one JSON document (same as --format json)")
    .option("--timeout <seconds>", "per-host deadline", "30")
    .option("--concurrency <n>", "hosts queried at once", "32")
    .option("-s", "statistics: messages, not preprocessed, local, remote, bouncing, bytes, oldest age")
    .addHelpText("after", EPILOGUE)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  // Commander keeps option values, not their order; qmHandle runs actions in the order given.
  program.on("option:s", () => actions.push(statsAction));
  return program;
}

function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) {
    throw new UsageError(`invalid ${flag} "${value}": expected a positive number`);
  }
  return n;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function outputFormat(flags: GlobalFlags): OutputFormat {
  if (flags.json && flags.format && flags.format !== "json") {
    throw new UsageError(`--json and --format ${flags.format} contradict each other: give one`);
  }
  return flags.json ? "json" : (flags.format ?? "table");
}

/** Runs qmfleet with these arguments (without "node qmfleet"); resolves to the exit status. */
export async function runQmfleet(args: readonly string[], io: Io, signal: AbortSignal): Promise<number> {
  const actions: Action[] = [];
  const program = buildProgram(io, actions);
  let clients: AgentClients | undefined;
  try {
    program.parse(args, { from: "user" });
    const flags = program.opts<GlobalFlags>();
    const format = outputFormat(flags);
    const timeoutMs = positive("--timeout", flags.timeout) * 1000;
    const concurrency = Math.floor(positive("--concurrency", flags.concurrency));
    if (actions.length === 0) {
      throw new UsageError("no action given: -s shows statistics (see qmfleet --help)");
    }
    if (!flags.inventory) {
      throw new UsageError("no inventory: give --inventory FILE or set QMFLEET_INVENTORY");
    }
    const inventory = await loadInventory(flags.inventory);
    const hosts = selectHosts(inventory, { hosts: list(flags.hosts), tags: list(flags.tags) });
    clients = await connectFleet(inventory);
    const ctx: ActionContext = { hosts, clients, format, timeoutMs, concurrency, signal, ...io };
    let worst = EXIT_OK;
    for (const action of actions) {
      const { hostsNotOk } = await action(ctx);
      if (hostsNotOk > 0) {
        worst = EXIT_HOST_FAILED;
      }
    }
    return worst;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help, or the version).
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof UsageError || error instanceof InventoryError) {
      io.stderr.write(`qmfleet: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  } finally {
    clients?.close();
  }
}
