// The qmfleet command line: qmHandle's flags, run against every targeted host of an inventory.
// Flags take their value glued on as in qmHandle (`-h'abcde.net'` reaches us as `-habcde.net`),
// so commander's own -h (help) and -V (version) are moved to --help and --version: those letters
// belong to qmHandle. Each action flag is queued in the order given and run in that order.
//
// Read actions: -s, -l/-L/-R (with -N for HOST:ID only), -m HOST:ID, --summary, --check,
// --quarantine. Changes: a deletion, -t (retry sooner), -a (send now), --restore HOST:ID.
// qmHandle's selection flags (@qmfleet/proto qmhandle-flags.ts, the same table as
// `qmfleet-agent local`) narrow -l/-L/-R, --summary and -t; given alone they ask for a deletion,
// as in qmHandle, which is PREVIEWED on every host (each agent makes a plan) unless --yes is
// given: then exactly the plans just made are executed (actions/purge-action.ts).

import { createRequire } from "node:module";
import {
  type AgentClients,
  connectFleet,
  InventoryError,
  type InventoryHost,
  loadInventory,
  PlanFileError,
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
  PurgeMode,
  parseSize,
  SortKey,
  shellCommand,
  sortLimitProblem,
} from "@qmfleet/proto";
import { Command, CommanderError, Option } from "commander";
import type { Action, ActionContext, ErrorOutput, Output } from "./actions/action.js";
import { checkAction } from "./actions/check-action.js";
import { listAction } from "./actions/list-action.js";
import { planFileAction, purgeAction } from "./actions/purge-action.js";
import { quarantineListAction, restoreAction } from "./actions/quarantine-action.js";
import { retryAction, sendNowAction } from "./actions/retry-action.js";
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
  yes?: boolean;
  reason?: string;
  stopped?: boolean;
  /** false with --no-flush. */
  flush?: boolean;
  retireTimeout?: string;
  canary?: string;
  planFile?: string;
  sample: string;
  allRecipients?: boolean;
  /** Set from the --no-quarantine event: commander shares its attribute with --quarantine. */
  noQuarantine?: boolean;
}

/** An action flag as given, before the flags that shape it (--limit, --top...) are known. */
type Requested =
  | { kind: "stats" }
  | { kind: "list"; channel?: "local" | "remote" }
  | { kind: "show"; target: string }
  | { kind: "summary" }
  | { kind: "check" }
  | { kind: "retry"; pattern: string }
  | { kind: "sendNow" }
  | { kind: "quarantine" }
  | { kind: "restore"; targets: string };

/** Actions that change queues: they take --reason, for the agents' audit logs. */
const CHANGES = new Set<Requested["kind"]>(["retry", "sendNow", "restore"]);

const EPILOGUE = `
Selection flags narrow -l, -L, -R, --summary and -t. Given alone they ask for a deletion, as in
qmHandle, which is only PREVIEWED: every host makes a plan (what matches, the mode, a sample) and
the command that deletes it is printed. Add --yes (and --reason, for the agents' audit logs) to
delete: the fleet is previewed again and exactly those plans are executed, each message
re-checked by its agent at the moment of change; --plan-file FILE saves a preview's plans, and
--plan-file FILE --yes executes them later. --dry-run lists every selected message instead (read
role enough). Criteria are ANDed (qmHandle ORs separate flags); several -d ids are ORed; -d takes
HOST:ID to purge one host's message. Every selection flag but -D has a --not-<name> form, e.g.
--not-sender '<>'. Patterns run on each agent with RE2 (no backreferences or lookaround). -S
matches the decoded Subject, so Japanese text is found as typed.

Purge modes: live (qmail-send keeps running, no downtime: the recipients are marked done and
qmail-send retires the message) where qmail-send runs; stopped (qmail-send stopped, files removed
in qmail's order, qmail-send started again) with --stopped, or where it is not running (then it
is not started). Messages are kept in each agent's quarantine unless --no-quarantine:
--quarantine lists them, --restore HOST:ID puts one back.

Exit status:
  0  every targeted host answered
  1  usage or configuration error: nothing was asked of any host (or every host refused
     the request as invalid, e.g. a pattern RE2 cannot run)
  2  at least one host failed, timed out, was unreachable, denied, cancelled or skipped
     (the hosts that answered are still reported); a purge that left messages failed, or
     could not stop or start qmail-send, counts as failed
  3  --check found problems in some queue
  70 internal error (a bug in qmfleet)

Examples:
  qmfleet --inventory fleet.yaml -s
  qmfleet --inventory fleet.yaml --tags tokyo -s --json
  qmfleet --inventory fleet.yaml --summary
  qmfleet --inventory fleet.yaml -l --sort age --desc --limit 20
  qmfleet --inventory fleet.yaml -S'failure notice'
  qmfleet --inventory fleet.yaml -S'failure notice' --yes --reason 'bounce storm INC-1234'
  qmfleet --inventory fleet.yaml -d mx1:1491085 --yes --reason 'stuck'
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
    .option("--dry-run", "list every message the selection flags would delete, delete nothing")
    .option("--yes", "delete: preview on every host, then execute exactly those plans")
    .option("--reason <text>", "why, for the agents' audit logs (required with --yes)")
    .option("--stopped", "stopped mode: stop qmail-send, remove the files, start it again")
    .option("--no-quarantine", "delete for good instead of keeping each message in the agent's quarantine")
    .option("--no-flush", "live mode: send qmail-send no ALRM; messages retire at their own next retry")
    .option("--retire-timeout <seconds>", "live mode: how long agents wait for qmail-send to retire them")
    .option(
      "--canary <n>",
      "with --yes: purge this many hosts first, the rest only if they all purged cleanly",
    )
    .option("--plan-file <file>", "save a preview's plans; with --yes and no selection: execute them")
    .option("--sample <n>", "preview: messages shown per host", "5")
    .option("-t <RE>", "retry sooner the messages with a recipient matching RE (qmHandle -t)")
    .option("-a", "send ALRM to qmail-send: retry every queued message now (qmHandle -a)")
    .option("--quarantine", "list the messages purges kept on every host")
    .option("--restore <HOST:ID>", "put a quarantined message back (repeatable, comma-separated)")
    .option("--all-recipients", "with --restore: to every recipient, also those already delivered")
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
  program.on("option:t", (pattern: string) => requested.push({ kind: "retry", pattern }));
  program.on("option:a", () => requested.push({ kind: "sendNow" }));
  program.on("option:quarantine", () => requested.push({ kind: "quarantine" }));
  program.on("option:restore", (targets: string) => requested.push({ kind: "restore", targets }));
  program.on("option:no-quarantine", () => {
    program.setOptionValue("noQuarantine", true);
  });
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

/** -d ids split into those for every host and those given as HOST:ID. */
interface HostIds {
  /** The selection without HOST:ID ids. */
  uses: FilterFlagUse[];
  /** HOST -> its ids, from -d HOST:ID. */
  byHost: Map<string, string[]>;
}

function splitHostIds(selection: readonly FilterFlagUse[]): HostIds {
  const uses: FilterFlagUse[] = [];
  const byHost = new Map<string, string[]>();
  let plain = false;
  for (const use of selection) {
    if (use.flag !== "id" || !use.value.includes(":")) {
      if (use.flag === "id") plain = true;
      uses.push(use);
      continue;
    }
    if (use.negate) throw new UsageError(`--not-id "${use.value}": give plain ids to leave out, not HOST:ID`);
    const rest: string[] = [];
    for (const item of use.value.split(",").map((x) => x.trim())) {
      const colon = item.lastIndexOf(":");
      if (colon < 0) {
        rest.push(item);
        continue;
      }
      const host = item.slice(0, colon);
      byHost.set(host, [...(byHost.get(host) ?? []), item.slice(colon + 1)]);
    }
    if (rest.length > 0) {
      plain = true;
      uses.push({ ...use, value: rest.join(",") });
    }
  }
  if (plain && byHost.size > 0) {
    throw new UsageError(
      "-d takes ids for every targeted host (-d 1234) or one host's (-d mx1:1234), not both at once",
    );
  }
  return { uses, byHost };
}

/** What the command line asks for: the actions, and the hosts -d HOST:ID narrows the fleet to. */
interface Planned {
  actions: Action[];
  /** Only these hosts (from -d HOST:ID). */
  onlyHosts?: string[];
  /** Execute a saved plan file: every inventory host it names, no selection. */
  planFile?: boolean;
}

function purgeFlagsProblem(flags: GlobalFlags, deletion: boolean, executing: boolean): string | undefined {
  const previewOnly: [string, boolean | undefined][] = [
    ["--stopped", flags.stopped],
    ["--no-quarantine", flags.noQuarantine],
  ];
  const executeOnly: [string, boolean | undefined][] = [
    ["--no-flush", flags.flush === false],
    ["--retire-timeout", flags.retireTimeout !== undefined],
    ["--canary", flags.canary !== undefined],
  ];
  for (const [flag, given] of previewOnly) {
    if (given && !deletion) return `${flag} shapes a deletion: give it with selection flags alone`;
  }
  for (const [flag, given] of executeOnly) {
    if (given && !executing) return `${flag} shapes a deletion's execution: give it with --yes`;
  }
  return undefined;
}

/** The command that executes a preview: the same arguments without --dry-run, with --yes and --reason. */
function executeCommand(args: readonly string[], flags: GlobalFlags): string {
  const hasReason = flags.reason !== undefined;
  const reason = hasReason ? "" : " --reason '<why>'";
  if (flags.planFile) {
    const inventory = flags.inventory ? ["--inventory", flags.inventory] : [];
    return `${shellCommand(["qmfleet", ...inventory, "--plan-file", flags.planFile, "--yes", ...(hasReason ? ["--reason", flags.reason as string] : [])])}${reason}`;
  }
  const kept = args.filter((a) => a !== "--dry-run" && a !== "--yes");
  return `${shellCommand(["qmfleet", ...kept, "--yes"])}${reason}`;
}

function reasonOf(flags: GlobalFlags): string {
  const reason = flags.reason?.trim() ?? "";
  if (reason === "") {
    throw new UsageError(
      "--yes needs --reason TEXT: why, for every agent's audit log (e.g. --reason 'bounce storm INC-1234'). Nothing was changed.",
    );
  }
  return reason;
}

/**
 * The actions to run, in the order given, with the flags that shape them; a deletion (previewed,
 * or executed with --yes) when selection flags come without -l/-L/-R/--summary/-t to narrow.
 * Every usage error is found here, before any host is asked anything.
 */
function plan(
  args: readonly string[],
  requested: Requested[],
  selection: FilterFlagUse[],
  flags: GlobalFlags,
  format: OutputFormat,
): Planned {
  const narrowed = (r: Requested) => r.kind === "list" || r.kind === "summary" || r.kind === "retry";
  if (selection.length > 0 && requested.some((r) => !narrowed(r))) {
    throw new UsageError(
      "selection flags narrow -l, -L, -R, --summary and -t (alone, they ask for a deletion): run -s, -m, --check, -a, --quarantine and --restore without them",
    );
  }
  const deletion = selection.length > 0 && requested.length === 0;
  const runPlanFile =
    flags.planFile !== undefined && flags.yes === true && !deletion && requested.length === 0;
  if (flags.dryRun && !deletion) {
    throw new UsageError(
      "--dry-run previews a deletion: give selection flags alone (e.g. -S'failure notice'; -D selects all)",
    );
  }
  if (flags.dryRun && (flags.yes || flags.planFile !== undefined)) {
    throw new UsageError("--dry-run only lists: it goes with neither --yes nor --plan-file");
  }
  if (flags.yes && !deletion && !runPlanFile) {
    throw new UsageError(
      "--yes confirms a deletion: give selection flags alone (e.g. -S'failure notice'; -D selects all), or --plan-file FILE",
    );
  }
  if (flags.planFile !== undefined && deletion && flags.yes) {
    throw new UsageError(
      "--plan-file with --yes executes saved plans: give it without selection flags (save them first: the same selection without --yes)",
    );
  }
  if (flags.planFile !== undefined && !deletion && !runPlanFile) {
    throw new UsageError(
      "--plan-file goes with a deletion's selection flags (to save its plans) or with --yes (to execute them)",
    );
  }
  if (runPlanFile && (flags.hosts !== undefined || flags.tags !== undefined)) {
    throw new UsageError(
      "--plan-file FILE --yes runs on the hosts the file names: leave out --hosts and --tags",
    );
  }
  const problem = purgeFlagsProblem(
    flags,
    deletion && !flags.dryRun,
    (deletion && flags.yes === true) || runPlanFile,
  );
  if (problem) throw new UsageError(problem);
  const changing = deletion || runPlanFile || requested.some((r) => CHANGES.has(r.kind));
  if (flags.reason !== undefined && !changing) {
    throw new UsageError(
      "--reason explains a change (a deletion, -t, -a or --restore) in the agents' audit logs",
    );
  }
  if (flags.allRecipients && !requested.some((r) => r.kind === "restore")) {
    throw new UsageError("--all-recipients goes with --restore");
  }
  const reason = flags.yes ? reasonOf(flags) : (flags.reason?.trim() ?? "");
  if (requested.length === 0 && !deletion && !runPlanFile) {
    throw new UsageError(
      "no action given: -s shows statistics, -l lists messages, --summary shows what fills the queues (see qmfleet --help)",
    );
  }
  if (flags.N && !(deletion || requested.some((r) => r.kind === "list"))) {
    throw new UsageError("-N lists ids: give it with -l, -L, -R or --dry-run");
  }
  if (flags.N && deletion && !flags.dryRun)
    throw new UsageError("-N lists ids: with a deletion, give it with --dry-run");
  if (flags.fingerprint !== undefined && !requested.some((r) => r.kind === "show")) {
    throw new UsageError("--fingerprint goes with -m HOST:ID");
  }
  const changesFormat =
    (deletion && !flags.dryRun) ||
    runPlanFile ||
    requested.some((r) => CHANGES.has(r.kind) || r.kind === "quarantine");
  if (format === "csv" && changesFormat) {
    throw new UsageError("--format csv is for listings and statistics: use table, json or ndjson here");
  }
  if (format === "json" && requested.length + (deletion || runPlanFile ? 1 : 0) > 1) {
    throw new UsageError("--json prints one document: give one action at a time");
  }
  const { uses, byHost } = splitHostIds(selection);
  if (byHost.size > 0 && (!deletion || flags.dryRun)) {
    throw new UsageError(
      "-d HOST:ID names a message to delete: to list one host's messages use --hosts HOST",
    );
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
  const sampleSize = count("--sample", flags.sample, 5);
  const canary = count("--canary", flags.canary, 0);
  const retireTimeoutSeconds = count("--retire-timeout", flags.retireTimeout, 0);
  const listRequest = (filter: Filter) => ({ filter, limit, sort, descending: flags.desc ?? false });
  const execute = { reason, noFlush: flags.flush === false, retireTimeoutSeconds };

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
      case "retry":
        return retryAction(filterFromFlags([...selection, { flag: "recipient", value: r.pattern }]), reason);
      case "sendNow":
        return sendNowAction(reason);
      case "quarantine":
        return quarantineListAction;
      case "restore":
        return restoreAction(parseRestoreTargets(r.targets), flags.allRecipients ?? false, reason);
    }
  };
  const actions = requested.map(actionFor);
  if (runPlanFile) {
    actions.push(planFileAction(flags.planFile as string, execute, canary));
    return { actions, planFile: true };
  }
  if (deletion && flags.dryRun) {
    const filter = filterFromFlags(selection);
    actions.push(
      listAction({
        request: listRequest({ criteria: [...filter.criteria, NOT_BEING_WRITTEN] }),
        numbers: flags.N ?? false,
        dryRun: { filter: describeFilter(filter), command: executeCommand(args, flags) },
      }),
    );
  } else if (deletion) {
    const filterFor = (host: InventoryHost): Filter =>
      filterFromFlags([
        ...uses,
        ...(byHost.has(host.name)
          ? [{ flag: "id" as const, value: (byHost.get(host.name) ?? []).join(",") }]
          : []),
      ]);
    // Checked now, for every host it will be sent to: a bad value is a usage error, not N failed hosts.
    for (const host of byHost.size > 0 ? byHost.keys() : [undefined]) {
      filterFromFlags([
        ...uses,
        ...(host ? [{ flag: "id" as const, value: (byHost.get(host) ?? []).join(",") }] : []),
      ]);
    }
    actions.push(
      purgeAction({
        request: (host) => ({
          filter: filterFor(host),
          mode: flags.stopped ? PurgeMode.PURGE_MODE_STOPPED : PurgeMode.PURGE_MODE_UNSPECIFIED,
          noQuarantine: flags.noQuarantine ?? false,
          includeMessages: false,
          sampleSize,
          reason,
        }),
        filter: describeSelection(uses, byHost),
        yes: flags.yes ?? false,
        execute,
        canary,
        ...(flags.planFile ? { planFile: flags.planFile } : {}),
        command: executeCommand(args, flags),
      }),
    );
  }
  return { actions, ...(byHost.size > 0 ? { onlyHosts: [...byHost.keys()] } : {}) };
}

/** The selection read back, -d HOST:ID as given. */
function describeSelection(uses: FilterFlagUse[], byHost: Map<string, string[]>): string {
  if (byHost.size === 0) return describeFilter(filterFromFlags(uses));
  const ids = `id ${[...byHost].map(([host, list]) => list.map((id) => `${host}:${id}`).join(" or ")).join(" or ")}`;
  return uses.length > 0 ? `${describeFilter(filterFromFlags(uses))} AND ${ids}` : ids;
}

/** --restore HOST:ID[,HOST:ID...]: quarantine ids by host. */
function parseRestoreTargets(spec: string): Map<string, string[]> {
  const byHost = new Map<string, string[]>();
  for (const item of spec
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "")) {
    const colon = item.lastIndexOf(":");
    if (colon <= 0 || colon === item.length - 1) {
      throw new UsageError(`--restore "${item}": expected HOST:ID, the id --quarantine shows after the host`);
    }
    const host = item.slice(0, colon);
    byHost.set(host, [...(byHost.get(host) ?? []), item.slice(colon + 1)]);
  }
  return byHost;
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
    const planned = plan(args, requested, selection, flags, format);
    if (!flags.inventory) {
      throw new UsageError("no inventory: give --inventory FILE or set QMFLEET_INVENTORY");
    }
    const inventory = await loadInventory(flags.inventory);
    let hosts = selectHosts(inventory, { hosts: list(flags.hosts), tags: list(flags.tags) });
    if (planned.onlyHosts) {
      const targeted = new Set(hosts.map((h) => h.name));
      const outside = planned.onlyHosts.filter((name) => !targeted.has(name));
      if (outside.length > 0) {
        throw new UsageError(
          `-d ${outside[0]}:ID: host ${outside.join(", ")} is not ${flags.hosts || flags.tags ? "among the targeted hosts" : "in the inventory"}`,
        );
      }
      hosts = hosts.filter((h) => planned.onlyHosts?.includes(h.name));
    }
    clients = await connectFleet(inventory);
    const ctx: ActionContext = { hosts, clients, format, timeoutMs, concurrency, signal, ...io };
    // The first action that did not end well gives the exit status.
    let exit = EXIT_OK;
    for (const action of planned.actions) {
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
    if (
      error instanceof UsageError ||
      error instanceof InventoryError ||
      error instanceof FilterFlagError ||
      error instanceof PlanFileError
    ) {
      io.stderr.write(`qmfleet: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  } finally {
    clients?.close();
  }
}
