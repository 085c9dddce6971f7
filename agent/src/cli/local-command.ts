// `qmfleet-agent local`: qmHandle on one host, run directly against the queue directory (no
// gRPC, no controller). Read actions -l -L -R -s -mID -N -c as in qmHandle, plus --qread
// (qmail-qread, byte for byte), --summary, --check, and qmHandle's selection flags through the
// same table as `qmfleet` (@qmfleet/proto qmhandle-flags.ts).
//
// Selection flags narrow -l/-L/-R, --summary and -t. Given without any of those, they ask for a
// deletion, as in qmHandle, which is PREVIEWED unless --yes is given: what would go, the mode, and
// the exact command that deletes it; --yes previews and executes that plan (local-purge.ts).
// Actions run in the order given; with --json exactly one action runs and prints exactly one
// JSON document.
//
// Values glue onto short flags as in qmHandle (-Sfoo, -m12345, -habcde.net), so -h is a
// selection flag here and help is --help only.
import {
  describeFilter,
  FILTER_FLAGS,
  type FilterFlagUse,
  filterFromFlags,
  parseSize,
  type Filter as WireFilter,
} from "@qmfleet/proto/messages";
import { type Command, Option } from "commander";
import { checkQueue } from "../engine/check.js";
import { compileFilter } from "../engine/filter.js";
import { type DetectedLayout, detectLayout } from "../engine/layout.js";
import type { Channel, Filter, QueuedMessage } from "../engine/model.js";
import type { PurgeEnvironment } from "../engine/purge.js";
import { qmailQread } from "../engine/qread.js";
import { type ScanCandidate, scanQueue } from "../engine/scan.js";
import { MessageIdError, MessageNotFoundError, type OpenedMessage, openMessage } from "../engine/show.js";
import { AUTO_DETAIL_LIMIT, queueStats } from "../engine/stats.js";
import { summarize } from "../engine/summarize.js";
import { filterFromWire } from "../filter-wire.js";
import { LocalUsageError, Output, OutputClosed } from "./local-output.js";
import {
  type ChangeContext,
  type ChangeFlags,
  checkDeletionFlags,
  executeCommand,
  executeDeletion,
  modeText,
  quarantineList,
  restoreAction,
  retryAction,
  sendNowAction,
} from "./local-purge.js";
import {
  listingBlock,
  messageJson,
  problemText,
  shownJson,
  shownText,
  statsJson,
  statsText,
  summaryText,
} from "./local-views.js";
import { addPurgeOptions, type PurgeFlags, purgeEnvironment } from "./purge-options.js";

/** Exit status when --check found problems (documented in --help; errors are 1, from the bin). */
export const EXIT_PROBLEMS_FOUND = 3;

type Action =
  | { kind: "list"; channel?: Channel }
  | { kind: "stats" }
  | { kind: "show"; ids: string[] }
  | { kind: "qread" }
  | { kind: "summary" }
  | { kind: "check" }
  | { kind: "delete" }
  | { kind: "retry"; pattern: string }
  | { kind: "sendNow" }
  | { kind: "quarantine" }
  | { kind: "restore"; ids: string[] };

/** Actions that change the queue: they take --reason (for the audit log). */
const CHANGES = new Set<Action["kind"]>(["delete", "retry", "sendNow", "restore"]);

interface LocalFlags extends PurgeFlags, ChangeFlags {
  queue: string;
  json?: boolean;
  dryRun?: boolean;
  numbers?: boolean;
  color?: boolean;
  detail?: boolean;
  top: string;
  bodyCap: string;
}

interface Run {
  flags: LocalFlags;
  layout: DetectedLayout;
  out: Output;
  now: number;
  selection: FilterFlagUse[];
  bodyCap: number;
  /** The command line as given, for the command a preview prints. */
  argv: readonly string[];
  /** Made on first use: only a change opens the audit log. */
  env?: PurgeEnvironment;
}

/** Selection flags as the engine's filter, through the wire mapping `qmfleet` uses too. */
function engineFilter(uses: FilterFlagUse[]): Filter {
  const wire: WireFilter = filterFromFlags(uses);
  return filterFromWire(wire);
}

/** Compiles the selection flags once, so that a bad pattern is an error before anything is read. */
function checkSelection(uses: FilterFlagUse[], now: number, bodyCap: number): void {
  compileFilter(engineFilter(uses), now, { bodyCapBytes: bodyCap });
}

function changeContext(run: Run, audit = true): ChangeContext {
  run.env ??= purgeEnvironment(run.flags.queue, run.flags, { audit });
  return { env: run.env, out: run.out, json: run.flags.json ?? false, flags: run.flags };
}

/**
 * The messages the selection flags (and -L/-R's channel) select, every message when there are
 * none. The scan applies the selection as it reads (a header criterion rejects a message before
 * its envelope is read). -N shows ids only: nothing else is read unless the selection needs it.
 */
function selected(run: Run, channel?: Channel): AsyncGenerator<ScanCandidate> {
  const uses: FilterFlagUse[] = channel
    ? [...run.selection, { flag: "channel", value: channel }]
    : run.selection;
  const idsOnly = (run.flags.numbers ?? false) && !run.flags.json;
  return scanQueue(run.layout, {
    ...(idsOnly ? { headers: false, envelope: false } : {}),
    ...(uses.length > 0
      ? { select: { filter: engineFilter(uses), now: run.now, options: { bodyCapBytes: run.bodyCap } } }
      : {}),
  });
}

async function list(run: Run, channel: Channel | undefined): Promise<void> {
  const { out, flags } = run;
  let count = 0;
  if (flags.json) await out.write('{"messages":[');
  for await (const { message } of selected(run, channel)) {
    if (flags.json)
      await out.write(`${count > 0 ? "," : ""}${JSON.stringify(messageJson(message, run.now))}`);
    else await out.write(flags.numbers ? `${message.id}\n` : listingBlock(message, flags.color ?? false));
    count++;
  }
  if (flags.json) await out.write(`],"count":${count}}\n`);
}

/** The deletion the selection asks for: executed with --yes, otherwise previewed (nothing changed). */
async function deletion(run: Run): Promise<void> {
  const { out, flags } = run;
  const description = describeFilter(filterFromFlags(run.selection));
  if (flags.yes) return executeDeletion(changeContext(run), engineFilter(run.selection), description);
  const mode = modeText(run.layout.root, flags.stopped ?? false);
  const command = executeCommand(run.argv);
  let count = 0;
  let bytes = 0;
  let beingWritten = 0;
  if (flags.json) await out.write(`{"dryRun":true,"filter":${JSON.stringify(description)},"messages":[`);
  else if (!flags.numbers)
    await out.write(`Dry run: messages matching ${description} (nothing is deleted)\n`);
  for await (const { message } of selected(run)) {
    // qmail-queue has not committed these yet: no deletion will ever touch them.
    if (message.state === "being-written") {
      beingWritten++;
      continue;
    }
    if (flags.json)
      await out.write(`${count > 0 ? "," : ""}${JSON.stringify(messageJson(message, run.now))}`);
    else await out.write(flags.numbers ? `${message.id}\n` : listingBlock(message, flags.color ?? false));
    count++;
    bytes += message.size;
  }
  if (flags.json) {
    const tail = { count, bytes, skippedBeingWritten: beingWritten, mode: mode.mode, command };
    await out.write(`],${JSON.stringify(tail).slice(1)}\n`);
  } else if (!flags.numbers) {
    // -N prints ids and nothing else, for scripts.
    const skipped =
      beingWritten > 0 ? `; ${beingWritten} still being written by qmail-queue, never deleted` : "";
    await out.write(
      `Would delete ${count} messages (${bytes} bytes)${skipped}\n` +
        `Mode: ${mode.text}\n` +
        `Nothing was deleted. To delete them:\n  ${command}\n`,
    );
  }
}

async function show(run: Run, ids: string[]): Promise<void> {
  const { out, flags } = run;
  const missing: string[] = [];
  const shown: object[] = [];
  for (const id of ids) {
    let opened: OpenedMessage;
    try {
      opened = openMessage(run.layout, id, { bodyCapBytes: run.bodyCap });
    } catch (error) {
      if (!(error instanceof MessageNotFoundError || error instanceof MessageIdError)) throw error;
      missing.push(id);
      continue;
    }
    try {
      if (flags.json) shown.push(shownJson(opened, run.now));
      else await out.write(shownText(opened, run.now, flags.color ?? false));
    } finally {
      opened.close();
    }
  }
  if (flags.json) await out.write(`${JSON.stringify({ messages: shown })}\n`);
  if (missing.length > 0) {
    throw new LocalUsageError(
      `no message ${missing.join(", ")} in ${run.layout.root} (delivered meanwhile, or a wrong id?)`,
    );
  }
}

async function stats(run: Run): Promise<void> {
  const s = await queueStats(run.layout, run.now, run.flags.detail ? { detail: true } : {});
  await run.out.write(run.flags.json ? `${JSON.stringify(statsJson(s))}\n` : statsText(s));
}

async function qread(run: Run): Promise<void> {
  const blocks = qmailQread(run.layout);
  if (!run.flags.json) {
    for await (const block of blocks) await run.out.write(block);
    return;
  }
  // One JSON string, streamed: the output of a big queue never sits in memory whole.
  await run.out.write('{"qread":"');
  for await (const block of blocks) await run.out.write(JSON.stringify(block).slice(1, -1));
  await run.out.write('"}\n');
}

async function summary(run: Run): Promise<void> {
  const top = Number(run.flags.top);
  if (!(Number.isSafeInteger(top) && top > 0))
    throw new LocalUsageError(`--top "${run.flags.top}": expected a positive number`);
  async function* messages(): AsyncGenerator<QueuedMessage> {
    for await (const c of selected(run)) yield c.message;
  }
  const result = await summarize(messages(), {
    groupBy: ["sender", "recipientDomain", "subject", "clientIp"],
    top,
    shape: true,
    now: run.now,
  });
  await run.out.write(run.flags.json ? `${JSON.stringify(result)}\n` : summaryText(result));
}

/** Problems found: exit status 3, so scripts can tell "problems" from "could not check". */
async function check(run: Run): Promise<void> {
  const { out, flags } = run;
  let count = 0;
  if (flags.json) await out.write('{"problems":[');
  for await (const problem of checkQueue(run.layout)) {
    await out.write(flags.json ? `${count > 0 ? "," : ""}${JSON.stringify(problem)}` : problemText(problem));
    count++;
  }
  if (flags.json) await out.write(`],"count":${count}}\n`);
  else if (count === 0) await out.write("no problems found\n");
  if (count > 0) process.exitCode = EXIT_PROBLEMS_FOUND;
}

async function runAction(run: Run, action: Action): Promise<void> {
  switch (action.kind) {
    case "list":
      return list(run, action.channel);
    case "stats":
      return stats(run);
    case "show":
      return show(run, action.ids);
    case "qread":
      return qread(run);
    case "summary":
      return summary(run);
    case "check":
      return check(run);
    case "delete":
      return deletion(run);
    case "retry":
      return retryAction(
        changeContext(run),
        run.layout,
        engineFilter(retrySelection(run.selection, action.pattern)),
      );
    case "sendNow":
      return sendNowAction(changeContext(run), run.layout);
    case "quarantine":
      return quarantineList(changeContext(run, false));
    case "restore":
      return restoreAction(changeContext(run), action.ids);
  }
}

/** -tRE: qmHandle's recipient pattern, ANDed with the selection flags. */
function retrySelection(selection: FilterFlagUse[], pattern: string): FilterFlagUse[] {
  return [...selection, { flag: "recipient", value: pattern }];
}

/**
 * The actions to run, in order: every -m joined into one show (one pass, one JSON document),
 * and a deletion added when selection flags come without -l/-L/-R/--summary to narrow.
 */
function plan(given: Action[], flags: LocalFlags, selection: FilterFlagUse[]): Action[] {
  const planned: Action[] = [];
  const showIds: string[] = [];
  for (const action of given) {
    if (action.kind !== "show") {
      planned.push(action);
      continue;
    }
    if (showIds.length === 0) planned.push({ kind: "show", ids: showIds });
    for (const id of action.ids) if (!showIds.includes(id)) showIds.push(id);
  }
  if (selection.length > 0) {
    if (planned.some((a) => a.kind !== "list" && a.kind !== "summary" && a.kind !== "retry")) {
      throw new LocalUsageError(
        "selection flags narrow -l, -L, -R, --summary and -t (alone, they ask for a deletion): run -s, -m, --qread, --check, -a, --quarantine and --restore without them",
      );
    }
    if (planned.length === 0) planned.push({ kind: "delete" });
  }
  const deleting = planned.some((a) => a.kind === "delete");
  if (flags.dryRun && !deleting) {
    throw new LocalUsageError(
      "--dry-run previews a deletion: give selection flags alone (e.g. -S'failure notice'; -D selects all)",
    );
  }
  if (flags.yes && !deleting) {
    throw new LocalUsageError(
      "--yes confirms a deletion: give selection flags alone (e.g. -S'failure notice'; -D selects all)",
    );
  }
  if (flags.yes && flags.dryRun) {
    throw new LocalUsageError("--yes deletes and --dry-run only previews: give one or the other");
  }
  const onlyForDeletion = [
    ["--stopped", flags.stopped],
    ["--no-quarantine", flags.noQuarantine],
    ["--no-flush", flags.flush === false],
    ["--retire-timeout", flags.retireTimeout !== undefined],
  ] as const;
  for (const [flag, given] of onlyForDeletion) {
    if (given && !deleting)
      throw new LocalUsageError(`${flag} shapes a deletion: give it with selection flags alone`);
  }
  if (flags.reason !== undefined && !planned.some((a) => CHANGES.has(a.kind))) {
    throw new LocalUsageError(
      "--reason explains a change (a deletion, -t, -a or --restore) in the audit log",
    );
  }
  if (flags.allRecipients && !planned.some((a) => a.kind === "restore")) {
    throw new LocalUsageError("--all-recipients goes with --restore");
  }
  if (deleting && flags.yes) checkDeletionFlags(flags);
  if (planned.length === 0) {
    throw new LocalUsageError(
      "nothing to do: give an action such as -l, -s, -m<id>, --qread, --summary or --check (see --help)",
    );
  }
  if (flags.json && planned.length > 1) {
    throw new LocalUsageError(
      "--json prints one document: give one action at a time (several -m count as one)",
    );
  }
  return planned;
}

const EPILOGUE = `
Selection flags narrow -l, -L, -R, --summary and -t. Given alone they ask for a deletion, as in
qmHandle, which is only PREVIEWED: what would be deleted, the mode, and the exact command that
deletes it. Add --yes (and --reason, for the audit log) to delete: the selection is previewed
again and exactly that plan is executed, each message re-checked at the moment of change.
Criteria are ANDed (qmHandle ORs separate flags); several -d ids are ORed. Every selection flag
but -D has a --not-<name> form, e.g. --not-sender '<>'.

Modes: live (qmail-send keeps running, no downtime: the message's recipients are marked done
and qmail-send retires it) while qmail-send runs; stopped (qmail-send is stopped, the files
removed in qmail's order, qmail-send started again) with --stopped, or when it is not running
(then it is not started). Purged messages are kept in the quarantine unless --no-quarantine:
--quarantine lists them, --restore ID puts one back through qmail-queue.

Exit status:
  0  done
  1  usage error, or the queue could not be read (nothing was changed)
  3  --check found problems
  4  a purge or restore left something undone (failed messages, qmail-send trouble: see the report)

Examples:
  qmfleet-agent local -l
  qmfleet-agent local -S'failure notice'
  qmfleet-agent local -S'failure notice' --yes --reason 'bounce storm INC-1234'
  qmfleet-agent local -t'@slow\\.example$'
  qmfleet-agent local --summary --older-than 1h --json`;

/** Registers `local` on the qmfleet-agent program. */
export function registerLocalCommand(program: Command): void {
  const actions: Action[] = [];
  const selection: FilterFlagUse[] = [];
  const command = program
    .command("local")
    .description("qmHandle on this host: list, show, summarise and check the queue directly")
    .helpOption("--help", "show this help")
    .option("--queue <dir>", "queue root", "/var/qmail/queue")
    .option("-l, --list", "list all messages (qmHandle -l)")
    .option("-L, --list-local", "list messages with local recipients")
    .option("-R, --list-remote", "list messages with remote recipients")
    .option("-s, --stats", "statistics (qmail-qstat's two lines first)")
    .option(
      "--detail",
      `-s: count bytes and the oldest message also above ${AUTO_DETAIL_LIMIT} messages (an lstat per file)`,
    )
    .option("-m, --show <id>", "show a message: envelope, decoded headers, MIME parts, text")
    .option("-N, --numbers", "list message ids only")
    .option("-c, --color", "colour the listing")
    .option("--qread", "qmail-qread's output, byte for byte")
    .option("--summary", "top senders, recipient domains, subjects, client IPs, and a qshape table")
    .option("--top <n>", "groups shown per dimension in --summary", "20")
    .option("--check", "report queue inconsistencies (changes nothing)")
    .option("--dry-run", "list what the selection flags would delete, delete nothing (the default)")
    .option("--yes", "delete what the selection flags select: preview, then execute exactly that plan")
    .option("--reason <text>", "why, for the audit log (required with --yes)")
    .option("--stopped", "stopped mode: stop qmail-send, remove the files, start it again")
    .option("--no-quarantine", "delete for good instead of keeping each message in the quarantine")
    .option("--no-flush", "live mode: send qmail-send no ALRM; messages retire at their own next retry")
    .option(
      "--retire-timeout <seconds>",
      "live mode: how long to wait for qmail-send to retire them (default 60)",
    )
    .option("-t, --retry <RE>", "retry sooner the messages with a recipient matching RE (qmHandle -t)")
    .option("-a, --send-now", "send ALRM to qmail-send: retry every queued message now (qmHandle -a)")
    .option("--quarantine", "list the messages purges kept")
    .option("--restore <ids>", "put quarantined messages back through qmail-queue (comma-separated ids)")
    .option("--all-recipients", "with --restore: to every recipient, also those already delivered")
    .option("--body-cap <size>", "body bytes read per message for -b/-B and -m", "1M")
    .option("--json", "print one JSON document");
  addPurgeOptions(command);
  for (const spec of FILTER_FLAGS) {
    const value = spec.valueName ? ` <${spec.valueName}>` : "";
    const flags = `${spec.short ? `-${spec.short}, ` : ""}--${spec.long}${value}`;
    command.option(flags, spec.description, (given: string | undefined) => {
      selection.push({ flag: spec.flag, value: typeof given === "string" ? given : "" });
    });
    if (spec.flag !== "all") {
      // Listed once in the epilogue rather than doubling the option list.
      const negated = new Option(`--not-${spec.long}${value}`, `not: ${spec.description}`).hideHelp();
      command.addOption(
        negated.argParser((given: string) => {
          selection.push({ flag: spec.flag, value: given, negate: true });
        }),
      );
    }
  }
  // Commander keeps option values, not their order; qmHandle runs actions in the order given.
  command.on("option:list", () => actions.push({ kind: "list" }));
  command.on("option:list-local", () => actions.push({ kind: "list", channel: "local" }));
  command.on("option:list-remote", () => actions.push({ kind: "list", channel: "remote" }));
  command.on("option:stats", () => actions.push({ kind: "stats" }));
  command.on("option:show", (id: string) => actions.push({ kind: "show", ids: [id] }));
  command.on("option:qread", () => actions.push({ kind: "qread" }));
  command.on("option:summary", () => actions.push({ kind: "summary" }));
  command.on("option:check", () => actions.push({ kind: "check" }));
  command.on("option:retry", (pattern: string) => actions.push({ kind: "retry", pattern }));
  command.on("option:send-now", () => actions.push({ kind: "sendNow" }));
  command.on("option:quarantine", () => actions.push({ kind: "quarantine" }));
  command.on("option:restore", (ids: string) =>
    actions.push({
      kind: "restore",
      ids: ids
        .split(",")
        .map((id) => id.trim())
        .filter((id) => id !== ""),
    }),
  );
  // --quarantine (the listing) and --no-quarantine share commander's attribute: tell them apart here.
  let noQuarantine = false;
  command.on("option:no-quarantine", () => {
    noQuarantine = true;
  });
  command.addHelpText("after", EPILOGUE);
  // Errors propagate to the bin, which prints the message and sets exit status 1.
  command.action(async (flags: LocalFlags) => {
    flags.noQuarantine = noQuarantine;
    const planned = plan(actions, flags, selection);
    const bodyCap = parseSize(flags.bodyCap);
    if (bodyCap === undefined || bodyCap === 0) {
      throw new LocalUsageError(`--body-cap "${flags.bodyCap}": expected a size like 1M or 65536`);
    }
    const now = Math.floor(Date.now() / 1000);
    // Before reading anything: a bad pattern is an error, not "0 messages".
    if (selection.length > 0) checkSelection(selection, now, bodyCap);
    for (const action of planned) {
      if (action.kind === "retry") checkSelection(retrySelection(selection, action.pattern), now, bodyCap);
    }
    const run: Run = {
      flags,
      // Once, before any output: an unreadable queue is an error, never an empty listing.
      layout: detectLayout(flags.queue),
      out: new Output(process.stdout),
      now,
      selection,
      bodyCap,
      argv: process.argv.slice(2),
    };
    try {
      for (const action of planned) await runAction(run, action);
    } catch (error) {
      if (!(error instanceof OutputClosed)) throw error;
    }
  });
}
