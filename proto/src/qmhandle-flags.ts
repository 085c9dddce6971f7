// qmHandle's selection flags (and ours beyond them) turned into the wire Filter. It lives in
// @qmfleet/proto, beside the Filter it builds, because two commands need exactly the same
// mapping and may not import each other: `qmfleet` (cli, through the controller) and
// `qmfleet-agent local` (agent, on one host). One table drives both, so a flag cannot mean
// one thing fleet-wide and another locally.
//
// Differences from qmHandle, on purpose:
// - Criteria are ANDed. qmHandle runs each flag as its own deletion (so -Sa -hb deletes the
//   union); here several flags narrow the selection, which can only select fewer messages.
//   Several -d ids are the exception: they are ORed, as in qmHandle.
// - -S is a literal substring (case-insensitive) of the decoded or the raw Subject, not a regex
//   on raw bytes: a Japanese subject is found by its text.
// - Every criterion but -D can be negated with its --not-<long> form (--not-sender '<>').
import type { Criterion, Filter } from "./gen/qmfleet/v1/queue.js";
import { Channel, MessageState } from "./gen/qmfleet/v1/queue.js";

export type FilterFlag =
  | "all"
  | "id"
  | "sender"
  | "senderRegex"
  | "subject"
  | "header"
  | "headerCase"
  | "body"
  | "bodyCase"
  | "toCc"
  | "toCcRegex"
  | "recipient"
  | "domain"
  | "olderThan"
  | "newerThan"
  | "minSize"
  | "maxSize"
  | "channel"
  | "state";

export interface FilterFlagSpec {
  flag: FilterFlag;
  /** qmHandle's one-letter flag, value glued on (-Sfoo); absent for our extras. */
  short?: string;
  /** --long form; the negated form is --not-<long>. */
  long: string;
  /** Placeholder for the value in help; absent for -D, which takes none. */
  valueName?: string;
  description: string;
}

/** Every selection flag, in help order. Each CLI registers its options from this table. */
export const FILTER_FLAGS: readonly FilterFlagSpec[] = [
  { flag: "all", short: "D", long: "all", description: "every message (qmHandle -D)" },
  {
    flag: "id",
    short: "d",
    long: "id",
    valueName: "ID",
    description: "message id; repeat or comma-separate, ORed",
  },
  {
    flag: "sender",
    short: "f",
    long: "sender",
    valueName: "ADDR",
    description: "envelope sender, exact ('<>' is the null sender)",
  },
  {
    flag: "senderRegex",
    short: "F",
    long: "sender-regex",
    valueName: "RE",
    description: "envelope sender regex",
  },
  {
    flag: "subject",
    short: "S",
    long: "subject",
    valueName: "TEXT",
    description: "text in the Subject (literal, any case; decoded or raw)",
  },
  {
    flag: "header",
    short: "h",
    long: "header",
    valueName: "RE",
    description: "regex on any header line (case-insensitive)",
  },
  {
    flag: "headerCase",
    short: "H",
    long: "header-case",
    valueName: "RE",
    description: "regex on any header line (case-sensitive)",
  },
  {
    flag: "body",
    short: "b",
    long: "body",
    valueName: "RE",
    description: "regex on any body line (case-insensitive)",
  },
  {
    flag: "bodyCase",
    short: "B",
    long: "body-case",
    valueName: "RE",
    description: "regex on any body line (case-sensitive)",
  },
  {
    flag: "toCc",
    short: "x",
    long: "to-cc",
    valueName: "ADDR",
    description: "text in a To/Cc/Bcc header (literal)",
  },
  {
    flag: "toCcRegex",
    short: "X",
    long: "to-cc-regex",
    valueName: "RE",
    description: "regex on To/Cc/Bcc headers (case-insensitive)",
  },
  {
    flag: "recipient",
    long: "recipient",
    valueName: "RE",
    description: "regex on envelope recipients (case-insensitive)",
  },
  {
    flag: "domain",
    long: "domain",
    valueName: "DOMAIN",
    description: "an envelope recipient in this domain",
  },
  {
    flag: "olderThan",
    long: "older-than",
    valueName: "AGE",
    description: "queued at least this long (90s, 30m, 12h, 7d, 2w)",
  },
  { flag: "newerThan", long: "newer-than", valueName: "AGE", description: "queued at most this long" },
  {
    flag: "minSize",
    long: "min-size",
    valueName: "SIZE",
    description: "at least this size (bytes, or 10k, 5M, 1G)",
  },
  { flag: "maxSize", long: "max-size", valueName: "SIZE", description: "at most this size" },
  {
    flag: "channel",
    long: "channel",
    valueName: "CHANNEL",
    description: "a recipient on this channel: local or remote",
  },
  {
    flag: "state",
    long: "state",
    valueName: "STATE",
    description: "preprocessed, todo, bouncing or being-written",
  },
];

/** One use of a selection flag on a command line, in the order given. */
export interface FilterFlagUse {
  flag: FilterFlag;
  /** The value as typed ("" for -D). */
  value: string;
  /** Given as --not-<long>. */
  negate?: boolean;
}

/** A flag value that cannot be turned into a criterion; the message names the flag. */
export class FilterFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FilterFlagError";
  }
}

function spelled(use: FilterFlagUse): string {
  const spec = FILTER_FLAGS.find((s) => s.flag === use.flag);
  if (!spec) return use.flag;
  if (use.negate) return `--not-${spec.long}`;
  return spec.short ? `-${spec.short}` : `--${spec.long}`;
}

const DURATION = /^(\d+)\s*([smhdw]?)$/i;
const SECONDS_PER: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** "90s", "30m", "12h", "7d", "2w" or plain seconds, to seconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * (SECONDS_PER[(match[2] ?? "").toLowerCase()] ?? 1);
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

const SIZE = /^(\d+)\s*([kmg]?)i?b?$/i;
const BYTES_PER: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "2048", "10k", "5M", "1G" (binary multiples, optional "B"/"iB") to bytes; undefined when malformed. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * (BYTES_PER[(match[2] ?? "").toLowerCase()] ?? 1);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const CHANNELS: Record<string, Channel> = { local: Channel.CHANNEL_LOCAL, remote: Channel.CHANNEL_REMOTE };
const STATES: Record<string, MessageState> = {
  preprocessed: MessageState.MESSAGE_STATE_PREPROCESSED,
  todo: MessageState.MESSAGE_STATE_TODO,
  bouncing: MessageState.MESSAGE_STATE_BOUNCING,
  "being-written": MessageState.MESSAGE_STATE_BEING_WRITTEN,
};

function needsValue(use: FilterFlagUse, what: string): string {
  if (use.value === "") {
    throw new FilterFlagError(
      `${spelled(use)} needs ${what}: an empty one would match every message (-D says that)`,
    );
  }
  return use.value;
}

function amount(use: FilterFlagUse, parse: (text: string) => number | undefined, example: string): number {
  const value = parse(use.value);
  if (value === undefined) throw new FilterFlagError(`${spelled(use)} "${use.value}": expected ${example}`);
  return value;
}

function oneOf<T>(use: FilterFlagUse, table: Record<string, T>): T {
  const value = table[use.value.toLowerCase()];
  if (value === undefined) {
    throw new FilterFlagError(
      `${spelled(use)} "${use.value}": expected one of ${Object.keys(table).join(", ")}`,
    );
  }
  return value;
}

/**
 * The envelope sender as typed: <a@b> is a@b, "<>" the null sender. An empty value is refused
 * rather than read as <>: `-f "$UNSET"` in a script must not select every bounce.
 */
function envelopeAddress(use: FilterFlagUse): string {
  const trimmed = use.value.trim();
  if (trimmed === "")
    throw new FilterFlagError(`${spelled(use)} needs an address (the null sender is written '<>')`);
  return trimmed.startsWith("<") && trimmed.endsWith(">") ? trimmed.slice(1, -1) : trimmed;
}

const AGE_EXAMPLE = "a duration like 90s, 30m, 12h, 7d or 2w";
const SIZE_EXAMPLE = "a size like 2048, 10k, 5M or 1G";

/** The criterion fields of one flag use (everything but `negate`). */
function criterionOf(use: FilterFlagUse): Omit<Criterion, "negate"> {
  switch (use.flag) {
    case "all":
      return { all: true };
    case "id":
      return { ids: { ids: idsOf(use) } };
    case "sender":
      return { senderExact: envelopeAddress(use) };
    case "senderRegex":
      return { senderRegex: { source: needsValue(use, "a pattern"), caseInsensitive: true } };
    case "subject":
      return { subjectContains: needsValue(use, "a text") };
    case "header":
      return { headerRegex: { source: needsValue(use, "a pattern"), caseInsensitive: true } };
    case "headerCase":
      return { headerRegex: { source: needsValue(use, "a pattern"), caseInsensitive: false } };
    case "body":
      return { bodyRegex: { source: needsValue(use, "a pattern"), caseInsensitive: true } };
    case "bodyCase":
      return { bodyRegex: { source: needsValue(use, "a pattern"), caseInsensitive: false } };
    case "toCc":
      return { toCcContains: needsValue(use, "an address") };
    case "toCcRegex":
      return { toCcRegex: { source: needsValue(use, "a pattern"), caseInsensitive: true } };
    case "recipient":
      return { recipientRegex: { source: needsValue(use, "a pattern"), caseInsensitive: true } };
    case "domain":
      return { recipientDomain: needsValue(use, "a domain").replace(/^@/, "") };
    case "olderThan":
      return { ageSeconds: { min: amount(use, parseDuration, AGE_EXAMPLE) } };
    case "newerThan":
      return { ageSeconds: { max: amount(use, parseDuration, AGE_EXAMPLE) } };
    case "minSize":
      return { sizeBytes: { min: amount(use, parseSize, SIZE_EXAMPLE) } };
    case "maxSize":
      return { sizeBytes: { max: amount(use, parseSize, SIZE_EXAMPLE) } };
    case "channel":
      return { channel: oneOf(use, CHANNELS) };
    case "state":
      return { state: oneOf(use, STATES) };
  }
}

function idsOf(use: FilterFlagUse): string[] {
  const ids = use.value.split(",").map((id) => id.trim());
  for (const id of ids) {
    if (!/^\d+$/.test(id)) {
      throw new FilterFlagError(
        `${spelled(use)} "${use.value}": "${id}" is not a message id (the number -l shows)`,
      );
    }
  }
  return ids;
}

/**
 * The Filter that a command line's selection flags ask for: one criterion per flag use, in
 * order, ANDed; all -d ids merged into one criterion (ORed), and all --not-id ids into another.
 * No flags give an empty filter, which selects nothing.
 */
export function filterFromFlags(uses: readonly FilterFlagUse[]): Filter {
  const criteria: Criterion[] = [];
  const idCriteria = new Map<boolean, Criterion>();
  for (const use of uses) {
    const negate = use.negate ?? false;
    if (use.flag === "all" && negate)
      throw new FilterFlagError("-D (all) cannot be negated: that selects nothing");
    const fields = criterionOf(use);
    const merged = fields.ids ? idCriteria.get(negate) : undefined;
    if (merged?.ids && fields.ids) {
      merged.ids.ids.push(...fields.ids.ids);
      continue;
    }
    const criterion: Criterion = { negate, ...fields };
    if (fields.ids) idCriteria.set(negate, criterion);
    criteria.push(criterion);
  }
  return { criteria };
}

function quoted(text: string): string {
  return JSON.stringify(text);
}

function pattern(p: { source: string; caseInsensitive: boolean }): string {
  return `/${p.source}/${p.caseInsensitive ? "i" : ""}`;
}

function range(
  name: string,
  r: { min?: number | undefined; max?: number | undefined },
  unit: string,
): string {
  if (r.min !== undefined && r.max !== undefined) return `${name} ${r.min}-${r.max}${unit}`;
  if (r.min !== undefined) return `${name} >= ${r.min}${unit}`;
  return `${name} <= ${r.max}${unit}`;
}

function describeCriterion(c: Criterion): string {
  if (c.all) return "all messages";
  if (c.ids) return `id ${c.ids.ids.join(" or ")}`;
  if (c.senderExact !== undefined) return `sender <${c.senderExact}>`;
  if (c.senderRegex) return `sender ~ ${pattern(c.senderRegex)}`;
  if (c.subjectContains !== undefined) return `subject contains ${quoted(c.subjectContains)}`;
  if (c.headerRegex) return `header ~ ${pattern(c.headerRegex)}`;
  if (c.bodyRegex) return `body ~ ${pattern(c.bodyRegex)}`;
  if (c.toCcContains !== undefined) return `To/Cc/Bcc contains ${quoted(c.toCcContains)}`;
  if (c.toCcRegex) return `To/Cc/Bcc ~ ${pattern(c.toCcRegex)}`;
  if (c.recipientRegex) return `recipient ~ ${pattern(c.recipientRegex)}`;
  if (c.recipientDomain !== undefined) return `recipient domain ${c.recipientDomain}`;
  if (c.ageSeconds) return range("age", c.ageSeconds, "s");
  if (c.sizeBytes) return range("size", c.sizeBytes, " bytes");
  if (c.channel !== undefined) return `channel ${c.channel === Channel.CHANNEL_LOCAL ? "local" : "remote"}`;
  if (c.state !== undefined) {
    return `state ${Object.entries(STATES).find(([, v]) => v === c.state)?.[0] ?? "unknown"}`;
  }
  return "(empty criterion)";
}

/** One line an operator can read back: `subject contains "x" AND NOT sender <>`. */
export function describeFilter(filter: Filter): string {
  if (filter.criteria.length === 0) return "nothing (no criteria)";
  return filter.criteria.map((c) => `${c.negate ? "NOT " : ""}${describeCriterion(c)}`).join(" AND ");
}
