// The MIME structure of a message, for `show` (an outline of its parts) and for body filters
// (the decoded text of its text parts). Synchronous and over bytes already read (the caller caps
// how many), so a filter verdict never waits on a stream: mailparser's parsers are streams and
// give no part numbers; this walker gives both, over a view of the bytes (no copies).
//
// Part paths: a multipart message itself is "" (unnamed) and its parts are "1", "2", ...; a
// single-part message's body is "1". Parts nest as a tree: the parts of "2" are "2.1", "2.2";
// an attached message (message/rfc822) at "3" holds one part, its top entity, "3.1".
import { Buffer } from "node:buffer";
import libmime from "libmime";
import { decodeCharset, decodeUnlabeled } from "./charsets.js";
import { cutHeaderBlock, firstFieldValue } from "./headers.js";
import { decodeEncodedWords } from "./rfc2047.js";

export interface MimePart {
  path: string;
  /** Lowercased type/subtype, "text/plain" when the part names none (RFC 2045 default). */
  contentType: string;
  /** The charset parameter as written, "" when absent. */
  charset: string;
  /** Lowercased Content-Transfer-Encoding, "7bit" when absent. */
  transferEncoding: string;
  /** Lowercased Content-Disposition type ("inline", "attachment"), "" when absent. */
  disposition: string;
  /** File name (Content-Disposition filename, or Content-Type name), decoded; "" when none. */
  filename: string;
  /** Bytes of the part's body as it sits in the message, still transfer-encoded. */
  size: number;
  /** The body was cut short: the message is longer than the bytes read. */
  truncated: boolean;
  /** multipart/* or message/rfc822, walked into: its parts follow it. */
  container: boolean;
  headerBlock: Buffer;
  /** The body, still transfer-encoded (a view into the bytes given to walkMime). */
  body: Buffer;
}

// A message is data from anyone: bound the recursion and the part count. A container past a
// bound is kept as a leaf (its bytes stay visible), not walked; parts past MAX_PARTS are not listed.
const MAX_DEPTH = 16;
const MAX_PARTS = 1000;

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const TRANSPORT_PADDING = /^[ \t\r]*$/;

/** The bodies of a multipart entity: what lies between its delimiter lines (RFC 2046 §5.1.1). */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delimiter = Buffer.from(`--${boundary}`, "latin1");
  const parts: Buffer[] = [];
  let partStart = -1;
  let pos = 0;
  for (;;) {
    const at = body.indexOf(delimiter, pos);
    if (at === -1) break;
    pos = at + 1;
    if (at !== 0 && body[at - 1] !== LF) continue;
    let after = at + delimiter.length;
    const closing = body[after] === DASH && body[after + 1] === DASH;
    if (closing) after += 2;
    const newline = body.indexOf(LF, after);
    const lineEnd = newline === -1 ? body.length : newline;
    // "--b" followed by more than padding is a longer boundary, or text: not this delimiter.
    if (!TRANSPORT_PADDING.test(body.toString("latin1", after, lineEnd))) continue;
    if (partStart !== -1) {
      // The line break before a delimiter belongs to the delimiter.
      let end = at;
      if (end > partStart && body[end - 1] === LF) end--;
      if (end > partStart && body[end - 1] === CR) end--;
      parts.push(body.subarray(partStart, end));
    }
    if (closing) return parts;
    partStart = newline === -1 ? body.length : newline + 1;
    pos = partStart;
  }
  // No closing delimiter: the bytes were capped, or the mailer never wrote it.
  if (partStart !== -1) parts.push(body.subarray(partStart));
  return parts;
}

/** Splits an entity (a part, or an attached message) into its header block and its body. */
function splitEntity(entity: Buffer): { headerBlock: Buffer; body: Buffer } {
  const cut = cutHeaderBlock(entity);
  if (cut.complete) {
    const bodyAt = cut.block.length + (entity[cut.block.length] === CR ? 2 : 1);
    return { headerBlock: cut.block, body: entity.subarray(bodyAt) };
  }
  // No empty line: headers only, unless the first line is no header (a broken part with no headers).
  const firstLineEnd = entity.indexOf(LF);
  const firstLine = entity.subarray(0, firstLineEnd === -1 ? entity.length : firstLineEnd);
  return firstLine.includes(":")
    ? { headerBlock: entity, body: entity.subarray(entity.length) }
    : { headerBlock: entity.subarray(0, 0), body: entity };
}

function parameter(parsed: libmime.ParsedHeaderValue, name: string): string {
  const value = parsed.params[name] ?? "";
  // RFC 2231 values (filename*=) come decoded; others may still carry RFC 2047 words, which
  // Japanese mailers put in file names.
  return parsed.decodedParams.includes(name) ? value : decodeEncodedWords(value);
}

interface Walk {
  parts: MimePart[];
  /** The end of the bytes read, when the message is longer: parts reaching it are truncated. */
  cutEnd: { buffer: ArrayBufferLike; end: number } | undefined;
}

function reachesCut(walk: Walk, body: Buffer): boolean {
  return (
    walk.cutEnd !== undefined &&
    body.buffer === walk.cutEnd.buffer &&
    body.byteOffset + body.length === walk.cutEnd.end
  );
}

/** `path` undefined: the message itself, "" when multipart, else "1". */
function walkEntity(
  walk: Walk,
  headerBlock: Buffer,
  body: Buffer,
  path: string | undefined,
  defaultType: string,
  depth: number,
): void {
  const contentType = libmime.parseHeaderValue(firstFieldValue(headerBlock, "Content-Type") ?? "", {
    stripComments: true,
  });
  const type = contentType.value.toLowerCase() || defaultType;
  const disposition = libmime.parseHeaderValue(firstFieldValue(headerBlock, "Content-Disposition") ?? "", {
    stripComments: true,
  });
  const transferEncoding = (
    firstFieldValue(headerBlock, "Content-Transfer-Encoding") ?? "7bit"
  ).toLowerCase();
  const boundary = contentType.params.boundary ?? "";
  const walkable = depth < MAX_DEPTH && walk.parts.length < MAX_PARTS;
  const multipart = walkable && type.startsWith("multipart/") && boundary !== "";
  const message = walkable && type === "message/rfc822";
  const part: MimePart = {
    path: path ?? (multipart ? "" : "1"),
    contentType: type,
    charset: contentType.params.charset ?? "",
    transferEncoding,
    disposition: disposition.value.toLowerCase(),
    filename: parameter(disposition, "filename") || parameter(contentType, "name"),
    size: body.length,
    truncated: reachesCut(walk, body),
    container: multipart || message,
    headerBlock,
    body,
  };
  walk.parts.push(part);
  const prefix = part.path === "" ? "" : `${part.path}.`;
  if (multipart) {
    // RFC 2046 §5.1.5: the parts of a digest are messages unless they say otherwise.
    const childDefault = type === "multipart/digest" ? "message/rfc822" : "text/plain";
    const children = splitMultipart(body, boundary);
    for (let i = 0; i < children.length && walk.parts.length < MAX_PARTS; i++) {
      const entity = splitEntity(children[i] as Buffer);
      walkEntity(walk, entity.headerBlock, entity.body, `${prefix}${i + 1}`, childDefault, depth + 1);
    }
  } else if (message) {
    const inner = splitEntity(decodeTransfer(part));
    walkEntity(walk, inner.headerBlock, inner.body, `${prefix}1`, "text/plain", depth + 1);
  }
}

/**
 * Every part of a message, containers first then their parts, in file order. `body` is the body
 * as read; `truncated` says the message goes on past it (the caller's byte cap).
 */
export function walkMime(headerBlock: Buffer, body: Buffer, truncated: boolean): MimePart[] {
  const walk: Walk = {
    parts: [],
    cutEnd: truncated ? { buffer: body.buffer, end: body.byteOffset + body.length } : undefined,
  };
  walkEntity(walk, headerBlock, body, undefined, "text/plain", 0);
  return walk.parts;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** Quoted-printable (RFC 2045 §6.7): =XX bytes and soft line breaks; anything malformed kept as is. */
function decodeQuotedPrintable(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b !== 0x3d) {
      out[n++] = b;
      continue;
    }
    // "=" then optional trailing whitespace then a line break: a soft break, removed.
    let j = i + 1;
    while (bytes[j] === 0x20 || bytes[j] === 0x09) j++;
    if (bytes[j] === LF || (bytes[j] === CR && bytes[j + 1] === LF) || j === bytes.length) {
      i = bytes[j] === CR ? j + 1 : j;
      continue;
    }
    const hi = hexValue(bytes[i + 1] ?? -1);
    const lo = hexValue(bytes[i + 2] ?? -1);
    if (hi >= 0 && lo >= 0) {
      out[n++] = hi * 16 + lo;
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n);
}

/** A part's body with its Content-Transfer-Encoding undone (unknown encodings: as is). */
export function decodeTransfer(part: MimePart): Buffer {
  switch (part.transferEncoding) {
    case "base64":
      // Node's decoder skips line breaks and stray characters: bad base64 yields what it can.
      return Buffer.from(part.body.toString("latin1"), "base64");
    case "quoted-printable":
      return decodeQuotedPrintable(part.body);
    default:
      return part.body;
  }
}

/** A part's body as text: transfer-decoded, then read in its charset (guessed when unlabeled). */
export function partText(part: MimePart): string {
  const bytes = decodeTransfer(part);
  return part.charset === "" ? decodeUnlabeled(bytes) : decodeCharset(bytes, part.charset);
}
