// `qmfleet-agent local`: qmHandle on one host, run directly against the queue directory (no
// gRPC, no controller). Read actions -l -L -R -s -mID -N -c as in qmHandle, plus --qread
// (qmail-qread, byte for byte), --summary, --check, and qmHandle's selection flags through the
// same table as `qmfleet` (@qmfleet/proto qmhandle-flags.ts).
//
// Selection flags narrow -l/-L/-R and --summary. Given without any of those, they ask for a
// deletion, as in qmHandle; this version only previews it (--dry-run) and refuses otherwise,
// deleting nothing. Actions run in the order given; with --json exactly one action runs and
// prints exactly one JSON document.
//
// Values glue onto short flags as in qmHandle (-Sfoo, -m12345, -habcde.net), so -h is a
// selection flag here and help is --help only.
import { once } from "node:events";
import { describeFilter, FILTER_FLAGS, type FilterFlagUse, filterFromFlags, parseSize } from "@qmfleet/proto";
import { type Command, Option } from "commander";
import { checkQueue } from "../engine/check.js";
import { type CompiledFilter, compileFilter } from "../engine/filter.js";
import { type DetectedLayout, detectLayout } from "../engine/layout.js";
import type { Channel, QueuedMessage } from "../engine/model.js";
import { qmailQread } from "../engine/qread.js";
import { type ScanCandidate, scanQueue } from "../engine/scan.js";
import { MessageIdError, MessageNotFoundError, type OpenedMessage, openMessage } from "../engine/show.js";
import { queueStats } from "../engine/stats.js";
import { summarize } from "../engine/summarize.js";
import { filterFromWire } from "../filter-wire.js";
import {
  listingBlock,
  messageJson,
  problemText,
  shownJson,
  shownText,
  statsText,
  summaryText,
} from "./local-views.js";

/** Exit status when --check found problems (documented in --help; errors are 1, from the bin). */
export const EXIT_PROBLEMS_FOUND = 3;

type Action =
  | { kind: "list"; channel?: Channel }
  | { kind: "stats" }
  | { kind: "show"; ids: string[] }
  | { kind: "qread" }
  | { kind: "summary" }
  | { kind: "check" }
  | { kind: "delete" };

interface LocalFlags {
  queue: string;
  json?: boolean;
  dryRun?: boolean;
  numbers?: boolean;
  color?: boolean;
  top: string;
  bodyCap: string;
}

/** A command line that cannot run; printed as is, exit status 1. */
class LocalUsageError extends Error {}

/** The reader went away (`local -l | head`): stop quietly, as Unix tools do. */
class OutputClosed extends Error {}

/** stdout with back-pressure: a listing of a million messages must not pile up in memory. */
class Output {
  private failure: NodeJS.ErrnoException | undefined;

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      this.failure = err;
    });
  }

  async write(text: string): Promise<void> {
    this.raise();
    if (!this.stream.write(text)) {
      // once() rejects on "error", which the listener above has recorded: raise() reports it.
      await Promise.race([once(this.stream, "drain"), once(this.stream, "close")]).catch(() => undefined);
    }
    this.raise();
  }

  private raise(): void {
    if (this.failure?.code === "EPIPE") throw new OutputClosed();
    if (this.failure) throw this.failure;
  }
}

interface Run {
  flags: LocalFlags;
  layout: DetectedLayout;
  out: Output;
  now: number;
  selection: FilterFlagUse[];
  bodyCap: number;
}

/** Selection flags as an engine filter, through the wire Filter `qmfleet` sends: one mapping for both. */
function compileSelection(uses: FilterFlagUse[], now: number, bodyCap: number): CompiledFilter {
  return compileFilter(filterFromWire(filterFromFlags(uses)), now, { bodyCapBytes: bodyCap });
}

/** The selection (and -L/-R's channel) as a filter, undefined when there is nothing to select by. */
function selectionFilter(run: Run, channel?: Channel): CompiledFilter | undefined {
  const uses: FilterFlagUse[] = channel
    ? [...run.selection, { flag: "channel", value: channel }]
    : run.selection;
  return uses.length === 0 ? undefined : compileSelection(uses, run.now, run.bodyCap);
}

async function* selected(run: Run, filter: CompiledFilter | undefined): AsyncGenerator<ScanCandidate> {
  for await (const candidate of scanQueue(run.layout)) {
    if (!filter || filter.matches(candidate)) yield candidate;
  }
}

async function list(run: Run, channel: Channel | undefined): Promise<void> {
  const { out, flags } = run;
  const filter = selectionFilter(run, channel);
  let count = 0;
  if (flags.json) await out.write('{"messages":[');
  for await (const { message } of selected(run, filter)) {
    if (flags.json)
      await out.write(`${count > 0 ? "," : ""}${JSON.stringify(messageJson(message, run.now))}`);
    else await out.write(flags.numbers ? `${message.id}\n` : listingBlock(message, flags.color ?? false));
    count++;
  }
  if (flags.json) await out.write(`],"count":${count}}\n`);
}

/** The deletion the selection asks for, previewed: what would be deleted, nothing changed. */
async function deletion(run: Run): Promise<void> {
  const { out, flags } = run;
  const filter = selectionFilter(run) as CompiledFilter;
  const description = describeFilter(filterFromFlags(run.selection));
  if (!flags.dryRun) {
    throw new LocalUsageError(
      `refusing to delete: this version of \`local\` does not delete. The selection (${description}) asks for a deletion, as in qmHandle; add --dry-run to list what it selects. Nothing was changed.`,
    );
  }
  let count = 0;
  let bytes = 0;
  let beingWritten = 0;
  if (flags.json) await out.write(`{"dryRun":true,"filter":${JSON.stringify(description)},"messages":[`);
  else if (!flags.numbers)
    await out.write(`Dry run: messages matching ${description} (nothing is deleted)\n`);
  for await (const { message } of selected(run, filter)) {
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
    await out.write(`],"count":${count},"bytes":${bytes},"skippedBeingWritten":${beingWritten}}\n`);
  } else if (!flags.numbers) {
    // -N prints ids and nothing else, for scripts.
    const skipped =
      beingWritten > 0 ? `; ${beingWritten} still being written by qmail-queue, never deleted` : "";
    await out.write(`Would delete ${count} messages (${bytes} bytes)${skipped}\n`);
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
  const s = await queueStats(run.layout, run.now);
  await run.out.write(run.flags.json ? `${JSON.stringify(s)}\n` : statsText(s));
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
  const filter = selectionFilter(run);
  async function* messages(): AsyncGenerator<QueuedMessage> {
    for await (const c of selected(run, filter)) yield c.message;
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
  }
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
    if (planned.some((a) => a.kind !== "list" && a.kind !== "summary")) {
      throw new LocalUsageError(
        "selection flags narrow -l, -L, -R and --summary (alone, they ask for a deletion): run -s, -m, --qread and --check without them",
      );
    }
    if (planned.length === 0) planned.push({ kind: "delete" });
  }
  if (flags.dryRun && !planned.some((a) => a.kind === "delete")) {
    throw new LocalUsageError(
      "--dry-run previews a deletion: give selection flags alone (e.g. -S'failure notice'; -D selects all)",
    );
  }
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
Selection flags narrow -l, -L, -R and --summary. Given alone they ask for a deletion, as in
qmHandle; this version previews it with --dry-run and deletes nothing. Criteria are ANDed
(qmHandle ORs separate flags); several -d ids are ORed. Every selection flag but -D has a
--not-<name> form, e.g. --not-sender '<>'.

Exit status:
  0  done
  1  usage error, or the queue could not be read (nothing was changed)
  3  --check found problems

Examples:
  qmfleet-agent local -l
  qmfleet-agent local -S'failure notice' --dry-run
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
    .option("-m, --show <id>", "show a message: envelope, decoded headers, MIME parts, text")
    .option("-N, --numbers", "list message ids only")
    .option("-c, --color", "colour the listing")
    .option("--qread", "qmail-qread's output, byte for byte")
    .option("--summary", "top senders, recipient domains, subjects, client IPs, and a qshape table")
    .option("--top <n>", "groups shown per dimension in --summary", "20")
    .option("--check", "report queue inconsistencies (changes nothing)")
    .option("--dry-run", "list what the selection flags would delete, delete nothing")
    .option("--body-cap <size>", "body bytes read per message for -b/-B and -m", "1M")
    .option("--json", "print one JSON document");
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
  command.addHelpText("after", EPILOGUE);
  // Errors propagate to the bin, which prints the message and sets exit status 1.
  command.action(async (flags: LocalFlags) => {
    const planned = plan(actions, flags, selection);
    const bodyCap = parseSize(flags.bodyCap);
    if (bodyCap === undefined || bodyCap === 0) {
      throw new LocalUsageError(`--body-cap "${flags.bodyCap}": expected a size like 1M or 65536`);
    }
    const now = Math.floor(Date.now() / 1000);
    // Before reading anything: a bad pattern is an error, not "0 messages".
    if (selection.length > 0) compileSelection(selection, now, bodyCap);
    const run: Run = {
      flags,
      // Once, before any output: an unreadable queue is an error, never an empty listing.
      layout: detectLayout(flags.queue),
      out: new Output(process.stdout),
      now,
      selection,
      bodyCap,
    };
    try {
      for (const action of planned) await runAction(run, action);
    } catch (error) {
      if (!(error instanceof OutputClosed)) throw error;
    }
  });
}
