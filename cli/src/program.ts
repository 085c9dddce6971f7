// The qmfleet command line: qmHandle's flags, run against every targeted host of an inventory.
// Flags take their value glued on as in qmHandle (`-h'abcde.net'` reaches us as `-habcde.net`),
// so commander's own -h (help) and -V (version) are moved to --help and --version: those letters
// belong to qmHandle. Each action flag is queued in the order given and run in that order.
//
// Read actions: -s, -l/-L/-R (with -N for HOST:ID only), -m HOST:ID, --summary, --check.
// qmHandle's selection flags (@qmfleet/proto qmhandle-flags.ts, the same table as
// `qmfleet-agent local`) narrow -l/-L/-R and --summary; given alone they ask for a deletion, as in
// qmHandle: this version previews it with --dry-run and otherwise refuses, deleting nothing.

import { createRequire } from "node:module";
import {
  type AgentClients,
  connectFleet,
  InventoryError,
  loadInventory,
  selectHosts,
} from "@qmfleet/controller";
import {
  Channel,
  describeFilter,
  FILTER_FLAGS,
  type Filter,
  FilterFlagError,
  type FilterFlagUse,
  filterFromFlags,
  MessageState,
  parseSize,
  SortKey,
  sortLimitProblem,
} from "@qmfleet/proto";
import { Command, CommanderError, Option } from "commander";
import type { Action, ActionContext, ErrorOutput, Output } from "./actions/action.js";
import { checkAction } from "./actions/check-action.js";
import { listAction } from "./actions/list-action.js";
import { showAction } from "./actions/show-action.js";
import { statsAction } from "./actions/stats-action.js";
import { summaryAction } from "./actions/summary-action.js";
import { EXIT_HOST_FAILED, EXIT_OK, EXIT_USAGE } from "./exit-codes.js";
import { OUTPUT_FORMATS, type OutputFormat } from "./render.js";
import { UsageError } from "./usage-error.js";

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
  /** -N: commander names a short-only flag by its letter. */
  N?: boolean;
  dryRun?: boolean;
  limit?: string;
  sort?: string;
  desc?: boolean;
  top: string;
  maxBytes: string;
  fingerprint?: string;
}

/** An action flag as given, before the flags that shape it (--limit, --top...) are known. */
type Requested =
  | { kind: "stats" }
  | { kind: "list"; channel?: "local" | "remote" }
  | { kind: "show"; target: string }
  | { kind: "summary" }
  | { kind: "check" };

const EPILOGUE = `
Selection flags narrow -l, -L, -R and --summary. Given alone they ask for a deletion, as in
qmHandle; this version previews it with --dry-run and deletes nothing. Criteria are ANDed
(qmHandle ORs separate flags); several -d ids are ORed. Every selection flag but -D has a
--not-<name> form, e.g. --not-sender '<>'. Patterns run on each agent with RE2 (no
backreferences or lookaround). -S matches the decoded Subject, so Japanese text is found as typed.

Exit status:
  0  every targeted host answered
  1  usage or configuration error: nothing was asked of any host (or every host refused
     the request as invalid, e.g. a pattern RE2 cannot run)
  2  at least one host failed, timed out, was unreachable, denied or cancelled
     (the hosts that answered are still reported)
  3  --check found problems in some queue
  70 internal error (a bug in qmfleet)

Examples:
  qmfleet --inventory fleet.yaml -s
  qmfleet --inventory fleet.yaml --tags tokyo -s --json
  qmfleet --inventory fleet.yaml --summary
  qmfleet --inventory fleet.yaml -l --sort age --desc --limit 20
  qmfleet --inventory fleet.yaml -S'failure notice' --dry-run
  qmfleet --inventory fleet.yaml -m mx1:1491085`;

const SORT_KEYS: Record<string, SortKey> = {
  id: SortKey.SORT_KEY_ID,
  age: SortKey.SORT_KEY_AGE,
  size: SortKey.SORT_KEY_SIZE,
};

function buildProgram(io: Io, requested: Requested[], selection: FilterFlagUse[]): Command {
  const program = new Command("qmfleet")
    .description("qmHandle's flags across a whole fleet of qmail servers")
    .helpOption("--help", "show this help")
    .version(VERSION, "--version", "show qmfleet's version")
    .addOption(new Option("--inventory <file>", "fleet inventory (YAML)").env("QMFLEET_INVENTORY"))
    .option("--hosts <names>", "only these hosts (comma-separated names)")
    .option("--tags <tags>", "only hosts with any of these tags (comma-separated)")
    .addOption(new Option("--format <format>", "output format").choices(OUTPUT_FORMATS))
    .option("--json", "output one JSON document (same as --format json)")
    .option("--timeout <seconds>", "per-host deadline; listings: the longest a host may stay silent", "30")
    .option("--concurrency <n>", "hosts queried at once", "32")
    .option("-s", "statistics: messages, not preprocessed, local, remote, bouncing, bytes, oldest age")
    .option("-l", "list all messages (qmHandle -l)")
    .option("-L", "list messages with local recipients")
    .option("-R", "list messages with remote recipients")
    .option("-N", "list HOST:ID only (what -m takes)")
    .option("-m <HOST:ID>", "show a message: envelope, decoded headers, MIME parts, text, raw message")
    .option("--fingerprint <fp>", "with -m: refuse to show another message than the one listed")
    .option("--max-bytes <size>", "with -m: raw bytes shown (0: all)", "0")
    .option("--summary", "top senders, recipient domains, subjects, client IPs, and a qshape table")
    .option("--top <n>", "groups shown per dimension in --summary", "10")
    .option("--check", "report queue inconsistencies (changes nothing)")
    .option("--dry-run", "list what the selection flags would delete, delete nothing")
    .option("--limit <n>", "messages listed per host (needed with --sort, at most 10000)")
    .addOption(
      new Option("--sort <key>", "sort each host's listing, merged across hosts").choices(
        Object.keys(SORT_KEYS),
      ),
    )
    .option("--desc", "with --sort: largest first (age: oldest first)")
    .addHelpText("after", EPILOGUE)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  for (const spec of FILTER_FLAGS) {
    const value = spec.valueName ? ` <${spec.valueName}>` : "";
    const flags = `${spec.short ? `-${spec.short}, ` : ""}--${spec.long}${value}`;
    program.option(flags, spec.description, (given: string | undefined) => {
      selection.push({ flag: spec.flag, value: typeof given === "string" ? given : "" });
    });
    if (spec.flag !== "all") {
      program.option(`--not-${spec.long}${value}`, `not ${spec.description}`, (given: string) => {
        selection.push({ flag: spec.flag, value: given, negate: true });
      });
    }
  }
  // Commander keeps option values, not their order; qmHandle runs actions in the order given.
  program.on("option:s", () => requested.push({ kind: "stats" }));
  program.on("option:l", () => requested.push({ kind: "list" }));
  program.on("option:L", () => requested.push({ kind: "list", channel: "local" }));
  program.on("option:R", () => requested.push({ kind: "list", channel: "remote" }));
  program.on("option:m", (target: string) => requested.push({ kind: "show", target }));
  program.on("option:summary", () => requested.push({ kind: "summary" }));
  program.on("option:check", () => requested.push({ kind: "check" }));
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

function count(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(Number.isSafeInteger(n) && n >= 0)) {
    throw new UsageError(`invalid ${flag} "${value}": expected a whole number`);
  }
  return n;
}

const ALL: Filter = { criteria: [{ negate: false, all: true }] };
// A deletion never touches a message qmail-queue is still writing: its preview must not list one.
const NOT_BEING_WRITTEN = { negate: true, state: MessageState.MESSAGE_STATE_BEING_WRITTEN };

/** The selection flags as a Filter, and -L/-R's channel; everything when there is no selection. */
function selectionFilter(selection: FilterFlagUse[], channel?: "local" | "remote"): Filter {
  const criteria = selection.length > 0 ? filterFromFlags(selection).criteria : [...ALL.criteria];
  if (channel) {
    criteria.push({
      negate: false,
      channel: channel === "local" ? Channel.CHANNEL_LOCAL : Channel.CHANNEL_REMOTE,
    });
  }
  return { criteria };
}

/**
 * The actions to run, in the order given, with the flags that shape them; a deletion preview
 * when selection flags come without -l/-L/-R/--summary to narrow. Every usage error is found here,
 * before any host is asked anything.
 */
function plan(
  requested: Requested[],
  selection: FilterFlagUse[],
  flags: GlobalFlags,
  format: OutputFormat,
): Action[] {
  if (selection.length > 0 && requested.some((r) => r.kind !== "list" && r.kind !== "summary")) {
    throw new UsageError(
      "selection flags narrow -l, -L, -R and --summary (alone, they ask for a deletion): run -s, -m and --check without them",
    );
  }
  const deletion = selection.length > 0 && requested.length === 0;
  if (flags.dryRun && !deletion) {
    throw new UsageError(
      "--dry-run previews a deletion: give selection flags alone (e.g. -S'failure notice'; -D selects all)",
    );
  }
  if (deletion && !flags.dryRun) {
    throw new UsageError(
      `refusing to delete: this version of qmfleet does not delete. The selection (${describeFilter(
        filterFromFlags(selection),
      )}) asks for a deletion, as in qmHandle; add --dry-run to list what it selects on every host. Nothing was changed.`,
    );
  }
  if (requested.length === 0 && !deletion) {
    throw new UsageError(
      "no action given: -s shows statistics, -l lists messages, --summary shows what fills the queues (see qmfleet --help)",
    );
  }
  if (flags.N && !(deletion || requested.some((r) => r.kind === "list"))) {
    throw new UsageError("-N lists ids: give it with -l, -L, -R or --dry-run");
  }
  if (flags.fingerprint !== undefined && !requested.some((r) => r.kind === "show")) {
    throw new UsageError("--fingerprint goes with -m HOST:ID");
  }
  if (format === "json" && requested.length + (deletion ? 1 : 0) > 1) {
    throw new UsageError("--json prints one document: give one action at a time");
  }
  const limit = count("--limit", flags.limit, 0);
  const sort = flags.sort === undefined ? SortKey.SORT_KEY_UNSPECIFIED : (SORT_KEYS[flags.sort] as SortKey);
  const sortProblem = sortLimitProblem(sort, limit);
  if (sortProblem) throw new UsageError(`--sort ${flags.sort}: ${sortProblem}`);
  if (flags.desc && flags.sort === undefined)
    throw new UsageError("--desc orders a --sort: give --sort id, age or size");
  const top = count("--top", flags.top, 10);
  if (top === 0) throw new UsageError(`invalid --top "${flags.top}": expected a positive number`);
  const maxBytes = parseSize(flags.maxBytes);
  if (maxBytes === undefined)
    throw new UsageError(`invalid --max-bytes "${flags.maxBytes}": expected a size like 64k or 0 for all`);
  const listRequest = (filter: Filter) => ({ filter, limit, sort, descending: flags.desc ?? false });

  const actionFor = (r: Requested): Action => {
    switch (r.kind) {
      case "stats":
        return statsAction;
      case "list":
        return listAction({
          request: listRequest(selectionFilter(selection, r.channel)),
          numbers: flags.N ?? false,
        });
      case "show":
        return showAction(r.target, maxBytes, flags.fingerprint);
      case "summary":
        return summaryAction(selectionFilter(selection), top);
      case "check":
        return checkAction;
    }
  };
  const actions = requested.map(actionFor);
  if (deletion) {
    const filter = filterFromFlags(selection);
    actions.push(
      listAction({
        request: listRequest({ criteria: [...filter.criteria, NOT_BEING_WRITTEN] }),
        numbers: flags.N ?? false,
        dryRun: { filter: describeFilter(filter) },
      }),
    );
  }
  return actions;
}

function outputFormat(flags: GlobalFlags): OutputFormat {
  if (flags.json && flags.format && flags.format !== "json") {
    throw new UsageError(`--json and --format ${flags.format} contradict each other: give one`);
  }
  return flags.json ? "json" : (flags.format ?? "table");
}

/** Runs qmfleet with these arguments (without "node qmfleet"); resolves to the exit status. */
export async function runQmfleet(args: readonly string[], io: Io, signal: AbortSignal): Promise<number> {
  const requested: Requested[] = [];
  const selection: FilterFlagUse[] = [];
  const program = buildProgram(io, requested, selection);
  let clients: AgentClients | undefined;
  try {
    program.parse(args, { from: "user" });
    const flags = program.opts<GlobalFlags>();
    const format = outputFormat(flags);
    const timeoutMs = positive("--timeout", flags.timeout) * 1000;
    const concurrency = Math.floor(positive("--concurrency", flags.concurrency));
    const actions = plan(requested, selection, flags, format);
    if (!flags.inventory) {
      throw new UsageError("no inventory: give --inventory FILE or set QMFLEET_INVENTORY");
    }
    const inventory = await loadInventory(flags.inventory);
    const hosts = selectHosts(inventory, { hosts: list(flags.hosts), tags: list(flags.tags) });
    clients = await connectFleet(inventory);
    const ctx: ActionContext = { hosts, clients, format, timeoutMs, concurrency, signal, ...io };
    // The first action that did not end well gives the exit status.
    let exit = EXIT_OK;
    for (const action of actions) {
      const { hostsNotOk, status } = await action(ctx);
      const mine = status ?? (hostsNotOk > 0 ? EXIT_HOST_FAILED : EXIT_OK);
      if (exit === EXIT_OK) exit = mine;
    }
    return exit;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help, or the version).
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof UsageError || error instanceof InventoryError || error instanceof FilterFlagError) {
      io.stderr.write(`qmfleet: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  } finally {
    clients?.close();
  }
}
