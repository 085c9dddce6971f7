// Which messages a filter selects: qmHandle's selection flags, decided on decoded text, plus
// envelope criteria qmHandle lacks. Criteria combine with AND, each may be negated, and an empty
// filter selects nothing ("every message" is the explicit `all`, qmHandle's -D), so a filter
// that lost its criteria on the way can never become "delete everything".
//
// Semantics chosen where qmHandle is loose or we go further (say these in the docs):
// - ids (-d): several ids are ORed; leading zeros are ignored.
// - senderExact (-f): the whole envelope sender; the local part compares exactly, the domain
//   case-insensitively (RFC 5321: domains are case-insensitive, local parts need not be).
//   "" is the null sender <>, "#@[]" the double-bounce sender.
// - subjectContains (-S): a literal substring (no regex: operators paste subjects full of
//   metacharacters), case-insensitive, of the decoded Subject or of the raw one. The Subject is
//   the one listings show: the first, when a message has several.
// - headerRegex (-h/-H): every physical header line as it is in the file, and every field
//   unfolded and decoded as "Name: value".
// - bodyRegex (-b/-B): every line of the decoded text parts (see body.ts), of the first
//   bodyCapBytes (default 1 MiB) of the body.
// - toCcContains (-x, literal, case-insensitive) / toCcRegex (-X): the values of every To, Cc
//   and Bcc field, decoded and raw (unfolded); the regex sees the value without "To:".
// - recipientRegex / recipientDomain / channel: true when ANY envelope recipient fits, delivered
//   (D) or not; the address tested is the one the sender wrote (virtual-domain prefix taken off);
//   recipientRegex also tests the stored form. recipientDomain is exact and case-insensitive.
// - ageSeconds / sizeBytes: closed ranges; age is now - birthTime (info mtime).
// - state: the message's state exactly ("preprocessed" does not include "bouncing").
import { Buffer } from "node:buffer";
import { type BodyText, bodyTexts, DEFAULT_BODY_CAP_BYTES } from "./body.js";
import { type HeaderField, isPlainAscii, listHeaderFields, rewrittenFieldLines } from "./headers.js";
import type {
  Channel,
  Criterion,
  Filter,
  MessageState,
  PatternSpec,
  QueuedMessage,
  RangeSpec,
} from "./model.js";
import { type CompiledPattern, compilePattern, PatternError } from "./pattern.js";

/** What a filter looks at; scan.ts's ScanCandidate is one. */
export interface FilterCandidate {
  message: QueuedMessage;
  /** The raw header block (see headers.ts cutHeaderBlock). */
  headBlock: Buffer;
  /** Up to maxBytes of the body, read only when a body criterion needs it. */
  readBody(maxBytes: number): Buffer;
}

export interface FilterOptions {
  /** Body bytes a body criterion reads per message (default DEFAULT_BODY_CAP_BYTES). */
  bodyCapBytes?: number;
}

export interface CompiledFilter {
  /** Some criterion reads the decoded Subject: the scan must decode headers. */
  readonly needsHeaders: boolean;
  /** Some criterion reads the body: matching reads up to bodyCapBytes per message. */
  readonly needsBody: boolean;
  matches(candidate: FilterCandidate): boolean;
  /**
   * The criteria that need nothing but the raw header block (-h/-H, -x, -X), as a test a scan
   * runs before reading a message's envelope: false means `matches` would be false too, so the
   * message is skipped after one read of its head (see scan.ts). True when there are none.
   */
  matchesHead(headBlock: Buffer): boolean;
  /** There are such criteria: matchesHead can say false. */
  readonly hasHeadCriteria: boolean;
  /** `matches` for a candidate whose head block matchesHead has passed: the other criteria only. */
  matchesPastHead(candidate: FilterCandidate): boolean;
  /** Some criterion reads the envelope (sender, recipients, birth time): see ScanOptions.envelope. */
  readonly needsEnvelope: boolean;
}

/** A filter that cannot be run; the message names the criterion and what is wrong. */
export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FilterError";
  }
}

const LABEL: Record<Criterion["kind"], string> = {
  all: "all (-D)",
  ids: "ids (-d)",
  senderExact: "sender (-f)",
  senderRegex: "sender regex (-F)",
  subjectContains: "subject (-S)",
  headerRegex: "header regex (-h/-H)",
  bodyRegex: "body regex (-b/-B)",
  toCcContains: "To/Cc/Bcc address (-x)",
  toCcRegex: "To/Cc/Bcc regex (-X)",
  recipientRegex: "recipient regex",
  recipientDomain: "recipient domain",
  ageSeconds: "age",
  sizeBytes: "size",
  channel: "channel",
  state: "state",
};

const CHANNELS: readonly Channel[] = ["local", "remote"];
/** Criteria that read the sender, the recipients or the birth time. */
const ENVELOPE_KINDS: ReadonlySet<Criterion["kind"]> = new Set([
  "senderExact",
  "senderRegex",
  "recipientRegex",
  "recipientDomain",
  "ageSeconds",
  "channel",
]);
const STATES: readonly MessageState[] = ["preprocessed", "todo", "bouncing", "being-written"];

/** Per-message lazy reads shared by the criteria of one verdict. */
class Reading {
  private fields: HeaderField[] | undefined;
  private texts: BodyText[] | undefined;
  private plain: boolean | undefined;

  constructor(
    readonly candidate: FilterCandidate,
    private readonly bodyCap: number,
  ) {}

  headerFields(): HeaderField[] {
    this.fields ??= listHeaderFields(this.candidate.headBlock);
    return this.fields;
  }

  /** The header block is plain ASCII: its bytes are its text (see headerLinesMatch). */
  plainHead(): boolean {
    this.plain ??= isPlainAscii(this.candidate.headBlock);
    return this.plain;
  }

  bodyTexts(): BodyText[] {
    if (!this.texts) {
      // One byte more than the cap tells whether the body goes on past it.
      const read = this.candidate.readBody(this.bodyCap + 1);
      const truncated = read.length > this.bodyCap;
      this.texts = bodyTexts(
        this.candidate.headBlock,
        truncated ? read.subarray(0, this.bodyCap) : read,
        truncated,
      );
    }
    return this.texts;
  }
}

type Test = (reading: Reading) => boolean;
/** Criteria run cheapest first, so a verdict rarely parses the header block and seldom reads the body. */
const Cost = { Envelope: 0, Summary: 1, HeaderBlock: 2, Body: 3 } as const;

interface CompiledCriterion {
  cost: number;
  test: Test;
}

const LINE_BREAK = /\r?\n/;

function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at === -1 ? "" : address.slice(at + 1).toLowerCase();
}

function sameAddress(a: string, b: string): boolean {
  const atA = a.lastIndexOf("@");
  const atB = b.lastIndexOf("@");
  if (atA === -1 || atB === -1) return a === b;
  return (
    a.slice(0, atA) === b.slice(0, atB) && a.slice(atA + 1).toLowerCase() === b.slice(atB + 1).toLowerCase()
  );
}

function inRange(value: number, range: RangeSpec): boolean {
  return (range.min === undefined || value >= range.min) && (range.max === undefined || value <= range.max);
}

/** The values of every To, Cc and Bcc field, decoded and raw-unfolded. */
function toCcValues(reading: Reading): string[] {
  const values: string[] = [];
  for (const field of reading.headerFields()) {
    const name = field.name.toLowerCase();
    if (name !== "to" && name !== "cc" && name !== "bcc") continue;
    values.push(
      field.decoded,
      field.raw
        .slice(field.raw.indexOf(":") + 1)
        .replace(/\r?\n/g, "")
        .trim(),
    );
  }
  return values;
}

/** Every raw header line, and every field as "Name: decoded value". */
function headerLines(reading: Reading): string[] {
  const lines: string[] = [];
  for (const field of reading.headerFields()) {
    lines.push(...field.raw.split(LINE_BREAK));
    lines.push(field.name === "" ? field.decoded : `${field.name}: ${field.decoded}`);
  }
  return lines;
}

/**
 * Whether any line headerLines gives matches, the cheap way when the block is plain ASCII: one
 * RE2 search of the raw bytes answers for every physical line (~1 us for a 2 KB block), and a
 * miss leaves only the rewritten fields (folded, encoded, oddly spaced) to test as text.
 * Decoding every field and testing each line cost ~25 us a message, more than reading it.
 */
function headerLinesMatch(reading: Reading, p: CompiledPattern): boolean {
  if (reading.plainHead()) {
    const raw = p.testLines(reading.candidate.headBlock);
    if (raw === true) return true;
    if (raw === false) return someLineMatches(rewrittenFieldLines(reading.candidate.headBlock), p);
  }
  return headerLines(reading).some((line) => p.test(line));
}

/**
 * Whether one of these lines matches, with one search of them all joined when that answers for
 * each of them (none holds a line break of its own): one call into RE2 instead of one a line.
 */
function someLineMatches(lines: string[], p: CompiledPattern): boolean {
  if (lines.length === 0) return false;
  const separate = !lines.some((line) => line.includes("\n") || line.includes("\r"));
  const joined = separate ? p.testLines(Buffer.from(lines.join("\n"))) : undefined;
  return joined ?? lines.some((line) => p.test(line));
}

function nonEmpty(criterion: Criterion, text: string): string {
  if (text === "") {
    throw new FilterError(
      `${LABEL[criterion.kind]}: empty text would match every message (say \`all\` (-D) for that)`,
    );
  }
  return text;
}

function checkedRange(criterion: Criterion, range: RangeSpec): RangeSpec {
  const label = LABEL[criterion.kind];
  if (range.min === undefined && range.max === undefined)
    throw new FilterError(`${label}: give a minimum, a maximum or both`);
  for (const bound of [range.min, range.max]) {
    if (bound !== undefined && !(Number.isSafeInteger(bound) && bound >= 0)) {
      throw new FilterError(`${label}: bound ${bound} is not a whole number >= 0`);
    }
  }
  if (range.min !== undefined && range.max !== undefined && range.min > range.max) {
    throw new FilterError(
      `${label}: minimum ${range.min} is above maximum ${range.max}, nothing could match`,
    );
  }
  return range;
}

function pattern(criterion: Criterion & { pattern: PatternSpec }): CompiledPattern {
  try {
    return compilePattern(criterion.pattern);
  } catch (err) {
    if (err instanceof PatternError) throw new FilterError(`${LABEL[criterion.kind]}: ${err.message}`);
    throw err;
  }
}

function compileCriterion(criterion: Criterion, now: number): CompiledCriterion {
  switch (criterion.kind) {
    case "all":
      return { cost: Cost.Envelope, test: () => true };
    case "ids": {
      if (criterion.ids.length === 0) throw new FilterError(`${LABEL.ids}: no id given`);
      const ids = new Set(
        criterion.ids.map((id) => {
          if (!/^\d+$/.test(id)) {
            throw new FilterError(
              `${LABEL.ids}: "${id}" is not a message id (the decimal number -l and qmail-qread show)`,
            );
          }
          return BigInt(id).toString();
        }),
      );
      return { cost: Cost.Envelope, test: (r) => ids.has(r.candidate.message.id) };
    }
    case "senderExact": {
      const sender = criterion.sender;
      return { cost: Cost.Envelope, test: (r) => sameAddress(r.candidate.message.sender, sender) };
    }
    case "senderRegex": {
      const p = pattern(criterion);
      return { cost: Cost.Envelope, test: (r) => p.test(r.candidate.message.sender) };
    }
    case "recipientRegex": {
      const p = pattern(criterion);
      return {
        cost: Cost.Envelope,
        test: (r) =>
          r.candidate.message.recipients.some((rcpt) => p.test(rcpt.address) || p.test(rcpt.stored)),
      };
    }
    case "recipientDomain": {
      const domain = nonEmpty(criterion, criterion.domain).replace(/^@/, "").toLowerCase();
      return {
        cost: Cost.Envelope,
        test: (r) => r.candidate.message.recipients.some((rcpt) => domainOf(rcpt.address) === domain),
      };
    }
    case "ageSeconds": {
      const range = checkedRange(criterion, criterion.range);
      return { cost: Cost.Envelope, test: (r) => inRange(now - r.candidate.message.birthTime, range) };
    }
    case "sizeBytes": {
      const range = checkedRange(criterion, criterion.range);
      return { cost: Cost.Envelope, test: (r) => inRange(r.candidate.message.size, range) };
    }
    case "channel": {
      const channel = criterion.channel;
      if (!CHANNELS.includes(channel))
        throw new FilterError(`${LABEL.channel}: "${channel}" is not local or remote`);
      return {
        cost: Cost.Envelope,
        test: (r) => r.candidate.message.recipients.some((rcpt) => rcpt.channel === channel),
      };
    }
    case "state": {
      const state = criterion.state;
      if (!STATES.includes(state))
        throw new FilterError(`${LABEL.state}: "${state}" is not one of ${STATES.join(", ")}`);
      return { cost: Cost.Envelope, test: (r) => r.candidate.message.state === state };
    }
    case "subjectContains": {
      const text = nonEmpty(criterion, criterion.text).toLowerCase();
      return {
        cost: Cost.Summary,
        test: (r) => {
          const { subject, subjectRaw } = r.candidate.message.headers;
          return subject.toLowerCase().includes(text) || subjectRaw.toLowerCase().includes(text);
        },
      };
    }
    case "headerRegex": {
      const p = pattern(criterion);
      return { cost: Cost.HeaderBlock, test: (r) => headerLinesMatch(r, p) };
    }
    case "toCcContains": {
      const text = nonEmpty(criterion, criterion.text).toLowerCase();
      return {
        cost: Cost.HeaderBlock,
        test: (r) => toCcValues(r).some((value) => value.toLowerCase().includes(text)),
      };
    }
    case "toCcRegex": {
      const p = pattern(criterion);
      return { cost: Cost.HeaderBlock, test: (r) => toCcValues(r).some((value) => p.test(value)) };
    }
    case "bodyRegex": {
      const p = pattern(criterion);
      return {
        cost: Cost.Body,
        test: (r) => r.bodyTexts().some((part) => part.text.split(LINE_BREAK).some((line) => p.test(line))),
      };
    }
  }
}

/** A candidate with a head block only, for matchesHead: reading anything else is a bug. */
class HeadOnly implements FilterCandidate {
  constructor(readonly headBlock: Buffer) {}
  get message(): never {
    return this.readBody();
  }
  readBody(): never {
    throw new Error("a header-block criterion read more than the header block");
  }
}

/**
 * Compiles a filter once per request. `now` is the current time in seconds since the epoch (the
 * unit of birthTime), fixed so that every message of one scan is aged against the same instant.
 * Throws FilterError when a criterion cannot be run (bad pattern, empty text, empty range).
 */
export function compileFilter(filter: Filter, now: number, options: FilterOptions = {}): CompiledFilter {
  const bodyCap = options.bodyCapBytes ?? DEFAULT_BODY_CAP_BYTES;
  if (!(Number.isSafeInteger(bodyCap) && bodyCap > 0)) {
    throw new FilterError(`body cap ${bodyCap} is not a positive number of bytes`);
  }
  const compiled = filter.criteria.map((criterion, i) => {
    try {
      const { cost, test } = compileCriterion(criterion, now);
      return { cost, test: criterion.negate ? (r: Reading) => !test(r) : test };
    } catch (err) {
      if (err instanceof FilterError)
        throw new FilterError(`invalid filter, criterion ${i + 1}: ${err.message}`);
      throw err;
    }
  });
  const ordered = compiled.sort((a, b) => a.cost - b.cost);
  const onHead = ordered.filter((c) => c.cost === Cost.HeaderBlock);
  const pastHead = ordered.filter((c) => c.cost !== Cost.HeaderBlock);
  const kinds = new Set(filter.criteria.map((c) => c.kind));
  // A filter without criteria selects nothing ("every message" is the `all` criterion). One
  // Reading per candidate: it keeps what one criterion decoded for the next.
  const allPass = (criteria: typeof ordered, candidate: FilterCandidate): boolean => {
    if (ordered.length === 0) return false;
    const reading = new Reading(candidate, bodyCap);
    return criteria.every((criterion) => criterion.test(reading));
  };
  return {
    needsHeaders: kinds.has("subjectContains"),
    needsBody: kinds.has("bodyRegex"),
    hasHeadCriteria: onHead.length > 0,
    needsEnvelope: [...kinds].some((k) => ENVELOPE_KINDS.has(k)),
    matches: (candidate) => allPass(ordered, candidate),
    matchesPastHead: (candidate) => allPass(pastHead, candidate),
    matchesHead(headBlock) {
      if (onHead.length === 0) return true;
      // Header-block criteria read nothing of the candidate but its head block.
      const reading = new Reading(new HeadOnly(headBlock), bodyCap);
      return onHead.every((criterion) => criterion.test(reading));
    },
  };
}
