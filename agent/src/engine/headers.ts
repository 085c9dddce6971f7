// The header block of a queued message: where it ends, its fields, and the few the engine keeps
// for every message. This runs for every message of every scan, so it works on the raw bytes:
// one latin1 view of the block (a byte is a character, so offsets are byte offsets), fields
// found with indexOf, and only the wanted fields decoded. mailparser's simpleParser costs ten
// times as much (toolchain.md) and is kept for show and body filters.
//
// Whatever the bytes, nothing here throws: qmail stores messages as they arrived, so a block may
// have CRLF or mixed line endings, folded fields, duplicate or missing fields, NUL bytes, raw
// 8-bit text in any Japanese charset, or no blank line at all.
import { type Buffer, isAscii } from "node:buffer";
import { decodeUnlabeled } from "./charsets.js";
import type { MessageHeaders } from "./model.js";
import { externalClientIp } from "./received.js";
import { decodeEncodedWords } from "./rfc2047.js";

export interface HeaderBlockCut {
  /** The header lines, each with its line ending, without the empty line that ends them. */
  block: Buffer;
  /** False when `head` holds no empty line: a message without a body, or a head read too short. */
  complete: boolean;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Cuts `head` (the start of a message) at its first empty line: LF LF, CRLF CRLF, or a mix of
 * the two. An empty first line means an empty header block.
 */
export function cutHeaderBlock(head: Buffer): HeaderBlockCut {
  if (head[0] === LF || (head[0] === CR && head[1] === LF)) {
    return { block: head.subarray(0, 0), complete: true };
  }
  // The empty line starts right after an LF and is either LF or CR LF.
  const lfLf = head.indexOf("\n\n");
  const lfCrLf = head.indexOf("\n\r\n");
  const at = lfLf === -1 ? lfCrLf : lfCrLf === -1 ? lfLf : Math.min(lfLf, lfCrLf);
  if (at === -1) return { block: head, complete: false };
  return { block: head.subarray(0, at + 1), complete: true };
}

/**
 * cutHeaderBlock for a head that stops at its empty line when it has one, as the native reader
 * keeps a mess file's head (batch-read.ts headOnly): the empty line, if any, is its end, so its
 * last bytes tell where the block ends without searching it again.
 */
export function cutKeptHead(head: Buffer): HeaderBlockCut {
  const n = head.length;
  if (head[n - 1] === LF) {
    if (n === 1 || head[n - 2] === LF) return { block: head.subarray(0, n - 1), complete: true };
    if (head[n - 2] === CR && (n === 2 || head[n - 3] === LF))
      return { block: head.subarray(0, n - 2), complete: true };
  }
  return { block: head, complete: false };
}

/** One field of a header block. */
export interface HeaderField {
  /** The name as written ("Subject"); "" for a line that is no field (no colon, or a stray fold). */
  name: string;
  /** The field as it sits in the file: every physical line, folds kept, the last line ending dropped. */
  raw: string;
  /** The value unfolded, RFC 2047-decoded and trimmed (the whole line when `name` is ""). */
  decoded: string;
}

interface FieldSpan {
  start: number;
  /** Offset of the colon ending the name, -1 when the first line has none. */
  colon: number;
  /** End of the field's last line, its line ending excluded. */
  end: number;
}

/**
 * Calls `field` with each field of a latin1 view of a header block, up to the first empty line
 * if there is one, as its FieldSpan's three numbers (no object: summarizeHeaders runs this for
 * every message of every scan).
 */
function eachField(text: string, field: (start: number, colon: number, end: number) => void): void {
  let start = -1;
  let colon = -1;
  let end = -1;
  let pos = 0;
  while (pos < text.length) {
    const newline = text.indexOf("\n", pos);
    const lineEnd = newline === -1 ? text.length : newline;
    const contentEnd = lineEnd > pos && text.charCodeAt(lineEnd - 1) === CR ? lineEnd - 1 : lineEnd;
    if (contentEnd === pos) break;
    const first = text.charCodeAt(pos);
    if ((first === 0x20 || first === 0x09) && start !== -1) {
      end = contentEnd;
    } else {
      if (start !== -1) field(start, colon, end);
      const at = text.indexOf(":", pos);
      start = pos;
      colon = at !== -1 && at < contentEnd ? at : -1;
      end = contentEnd;
    }
    pos = lineEnd + 1;
  }
  if (start !== -1) field(start, colon, end);
}

/** Fields of a latin1 view of a header block, up to the first empty line if there is one. */
function fieldSpans(text: string): FieldSpan[] {
  const spans: FieldSpan[] = [];
  eachField(text, (start, colon, end) => spans.push({ start, colon, end }));
  return spans;
}

// ESC starts ISO-2022-JP's shifts; 0x80-0xFF is raw 8-bit text. Either way the latin1 view is
// not the text, and the bytes go through the charset guess.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts an ISO-2022-JP shift.
const NOT_PLAIN_ASCII = /[\x1b\x80-\xff]/;

/** A header block with its latin1 view, and whether that view is already the text. */
interface BlockView {
  block: Buffer;
  latin1: string;
  /** No ESC and no 8-bit byte anywhere: every field is plain ASCII (the common case, tested once). */
  plain: boolean;
}

function viewOf(block: Buffer): BlockView {
  return { block, latin1: block.toString("latin1"), plain: isPlainAscii(block) };
}

function textOf(v: BlockView, start: number, end: number): string {
  const text = v.latin1.slice(start, end);
  return v.plain || !NOT_PLAIN_ASCII.test(text) ? text : decodeUnlabeled(v.block.subarray(start, end));
}

// RFC 5322 unfolding removes the line break before the whitespace that starts a fold.
const FOLD = /\r?\n/g;

function unfold(text: string): string {
  return text.includes("\n") ? text.replace(FOLD, "") : text;
}

/** The value of the field whose name ends at `colon` and whose last line ends at `end`, unfolded and trimmed. */
function unfoldedValue(v: BlockView, colon: number, end: number): string {
  return unfold(textOf(v, colon + 1, end)).trim();
}

function fieldName(latin1: string, span: FieldSpan): string {
  return span.colon === -1 ? "" : latin1.slice(span.start, span.colon).trimEnd();
}

/** Every field of a header block in file order, for show and for header filters. */
export function listHeaderFields(block: Buffer): HeaderField[] {
  const v = viewOf(block);
  return fieldSpans(v.latin1).map((span) => {
    const name = fieldName(v.latin1, span);
    const raw = textOf(v, span.start, span.end);
    const value = name === "" ? unfold(raw).trim() : unfoldedValue(v, span.colon, span.end);
    return { name, raw, decoded: decodeEncodedWords(value) };
  });
}

/**
 * True when the block has no ESC and no 8-bit byte: its bytes are then the text header filters
 * see, so a pattern can be run on the bytes themselves (see headerLinesMatch in filter.ts).
 */
export function isPlainAscii(block: Buffer): boolean {
  // Both in native code: the regex over the latin1 view this replaced took 0.3 us a message.
  return isAscii(block) && block.indexOf(0x1b) === -1;
}

/**
 * For a plain-ASCII block (isPlainAscii): the "Name: value" lines that listHeaderFields would
 * decode and that are not already one of the block's physical lines, spelled exactly. A one-line
 * field written "Name: value" with nothing to decode is left out: a filter that tested the
 * physical lines has tested it. What remains is the folded fields, the encoded words and the
 * odd spacing ("Name:value"), typically 2-3 of a message's dozen fields, which is what makes a
 * header search that found nothing in the raw bytes cheap to finish (no charset work).
 */
export function rewrittenFieldLines(block: Buffer): string[] {
  const latin1 = block.toString("latin1");
  const out: string[] = [];
  for (const span of fieldSpans(latin1)) {
    if (writtenAsDecoded(latin1, span)) continue;
    const raw = latin1.slice(span.start, span.end);
    const name = fieldName(latin1, span);
    const line =
      name === ""
        ? decodeEncodedWords(unfold(raw).trim())
        : `${name}: ${decodeEncodedWords(unfold(latin1.slice(span.colon + 1, span.end)).trim())}`;
    if (line !== raw) out.push(line);
  }
  return out;
}

/** What String.prototype.trim takes off an ASCII string: space, TAB, LF, VT, FF, CR. */
const isBlank = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/**
 * A one-line field spelled "Name: value" with no encoded word: decoding it gives back its line,
 * told without building either string (most fields of a message; rewrittenFieldLines skips them).
 */
function writtenAsDecoded(latin1: string, span: FieldSpan): boolean {
  const { start, colon, end } = span;
  if (colon === -1 || colon === start || colon + 2 >= end) return false;
  return (
    !isBlank(latin1.charCodeAt(colon - 1)) &&
    latin1.charCodeAt(colon + 1) === 0x20 &&
    !isBlank(latin1.charCodeAt(colon + 2)) &&
    !isBlank(latin1.charCodeAt(end - 1)) &&
    !hasWithin(latin1, "\n", colon, end) &&
    !hasWithin(latin1, "=?", colon, end)
  );
}

function hasWithin(text: string, what: string, from: number, end: number): boolean {
  const at = text.indexOf(what, from);
  return at !== -1 && at < end;
}

/**
 * The first field named `name` (any case), unfolded and trimmed but not RFC 2047-decoded (MIME
 * parameters have their own encoding); undefined when the block has no such field.
 */
export function firstFieldValue(block: Buffer, name: string): string | undefined {
  const v = viewOf(block);
  const wanted = name.toLowerCase();
  for (const span of fieldSpans(v.latin1)) {
    if (span.colon !== -1 && fieldName(v.latin1, span).toLowerCase() === wanted) {
      return unfoldedValue(v, span.colon, span.end);
    }
  }
  return undefined;
}

export interface HeaderSummary {
  headers: MessageHeaders;
  /** First external client address in the Received chain (see received.ts), "" when none. */
  clientIp: string;
}

/** The fields summarizeHeaders keeps; an index here is one in WANTED_NAMES and a pair in HeadFields. */
const SUMMARY_FIELDS = ["from", "to", "cc", "subject", "date", "message-id"] as const;
const RECEIVED = SUMMARY_FIELDS.length;
const WANTED_NAMES = [...SUMMARY_FIELDS, "received"];

/** Received fields whose places HeadFields holds; the count holds them all. */
const RECEIVED_KEPT = 8;
const PLAIN = 0;
const RECEIVED_COUNT = 1 + 2 * SUMMARY_FIELDS.length;

/**
 * Where a header block has the fields summarizeHeaders reads, as HEAD_FIELD_INTS numbers from
 * an offset in an Int32Array, all offsets into the block (agent/native/head_fields.h has the
 * same layout: the native reader finds them for a scan, batch-read.ts BatchRequest.fields):
 * [0] 1 when the block is plain ASCII (isPlainAscii), else 0; [1..12] the colon and end of the
 * first field of each SUMMARY_FIELDS name (-1 -1: none), as FieldSpan has them; [13] how many
 * Received fields there are; [14..29] the colon and end of the first RECEIVED_KEPT of them.
 */
export const HEAD_FIELD_INTS = RECEIVED_COUNT + 1 + 2 * RECEIVED_KEPT;

/**
 * The index in WANTED_NAMES of the field whose name runs from `start` to `colon`, compared as
 * fieldName(...).toLowerCase() would be without building either string; -1 for any other.
 */
function wantedNameAt(latin1: string, start: number, colon: number): number {
  let end = colon;
  // What trimEnd takes off a latin1 string: space, TAB, LF, VT, FF, CR and NBSP.
  while (end > start && (isBlank(latin1.charCodeAt(end - 1)) || latin1.charCodeAt(end - 1) === 0xa0)) end--;
  for (let w = 0; w < WANTED_NAMES.length; w++) {
    const name = WANTED_NAMES[w] as string;
    if (name.length === end - start && startsWithName(latin1, start, name)) return w;
  }
  return -1;
}

/** Whether text at `at` spells `name` (lower-case ASCII) in any case, without building a string. */
function startsWithName(text: string, at: number, name: string): boolean {
  if (text.length - at < name.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = text.charCodeAt(at + i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * What findHeadFields found last, and the Received fields past RECEIVED_KEPT it found: reused
 * from call to call, which is safe as summarizeHeaders is synchronous and calls nothing that
 * could come back to it.
 */
const found = new Int32Array(HEAD_FIELD_INTS);
const receivedPastKept: number[] = [];

/**
 * The HeadFields of a block (in `found`, at 0), the Received fields past RECEIVED_KEPT in
 * receivedPastKept: what head_fields.c gives, for a block the native reader did not read.
 */
export function findHeadFields(block: Buffer, latin1: string = block.toString("latin1")): Int32Array {
  found.fill(-1);
  found[PLAIN] = isPlainAscii(block) ? 1 : 0;
  found[RECEIVED_COUNT] = 0;
  receivedPastKept.length = 0;
  eachField(latin1, (start, colon, end) => {
    if (colon === -1) return;
    const w = wantedNameAt(latin1, start, colon);
    if (w === RECEIVED) {
      const k = found[RECEIVED_COUNT] as number;
      found[RECEIVED_COUNT] = k + 1;
      if (k < RECEIVED_KEPT) {
        found[RECEIVED_COUNT + 1 + 2 * k] = colon;
        found[RECEIVED_COUNT + 2 + 2 * k] = end;
      } else receivedPastKept.push(colon, end);
    } else if (w !== -1 && found[1 + 2 * w] === -1) {
      found[1 + 2 * w] = colon;
      found[2 + 2 * w] = end;
    }
  });
  return found;
}

/**
 * The first external client address of a block's Received fields (HeadFields `fields` at
 * `at`, and receivedPastKept beyond them), walking from the top (newest) down, each decoded
 * only when its turn comes and left folded (receivedClientIp reads a fold's line break as the
 * blank it is; qmail-smtpd folds every one of its lines), skipping those of a plain-ASCII block
 * that do not start with "from" and a blank: they name no client (receivedClientIp needs its
 * from clause), and qmail-queue's own "(qmail 123 invoked ...)" line tops every message.
 */
function clientIpOf(v: BlockView, fields: Int32Array, at: number): string {
  const count = fields[at + RECEIVED_COUNT] as number;
  for (let k = 0; k < count; k++) {
    const kept = k < RECEIVED_KEPT;
    const i = 2 * (kept ? k : k - RECEIVED_KEPT);
    const colon = (kept ? fields[at + RECEIVED_COUNT + 1 + i] : receivedPastKept[i]) as number;
    const end = (kept ? fields[at + RECEIVED_COUNT + 2 + i] : receivedPastKept[i + 1]) as number;
    if (v.plain && !startsWithFrom(v.latin1, colon + 1, end)) continue;
    const ip = externalClientIp(textOf(v, colon + 1, end));
    if (ip) return ip;
  }
  return "";
}

/** Whether text[start, end), blanks and line breaks skipped, starts with "from" (any case) and a blank. */
function startsWithFrom(text: string, start: number, end: number): boolean {
  let at = start;
  while (at < end && isBlank(text.charCodeAt(at))) at++;
  return end - at >= 5 && startsWithName(text, at, "from") && isBlank(text.charCodeAt(at + 4));
}

/**
 * The fields the engine keeps for every message, plus the client address. A field given twice
 * keeps its first occurrence (what most mail readers show for a duplicated Subject); a missing
 * field is "". Values are unfolded and RFC 2047-decoded; subjectRaw is the Subject unfolded only.
 * `native`: the block's HeadFields at `at` as the native reader found them (else, or when it
 * has more Received fields than they hold, they are found here).
 */
export function summarizeHeaders(block: Buffer, native?: Int32Array, at = 0): HeaderSummary {
  const latin1 = block.toString("latin1");
  const given = native !== undefined && (native[at + RECEIVED_COUNT] as number) <= RECEIVED_KEPT;
  const fields = given ? native : findHeadFields(block, latin1);
  const base = given ? at : 0;
  const v: BlockView = { block, latin1, plain: fields[base + PLAIN] === 1 };
  const value = (name: (typeof SUMMARY_FIELDS)[number]): string => {
    const w = SUMMARY_FIELDS.indexOf(name);
    const colon = fields[base + 1 + 2 * w] as number;
    return colon === -1 ? "" : unfoldedValue(v, colon, fields[base + 2 + 2 * w] as number);
  };
  const subjectRaw = value("subject");
  return {
    headers: {
      from: decodeEncodedWords(value("from")),
      to: decodeEncodedWords(value("to")),
      cc: decodeEncodedWords(value("cc")),
      subject: decodeEncodedWords(subjectRaw),
      subjectRaw,
      date: value("date"),
      messageId: value("message-id"),
    },
    clientIp: clientIpOf(v, fields, base),
  };
}
