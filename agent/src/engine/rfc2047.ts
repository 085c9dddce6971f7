// RFC 2047 encoded words (=?charset?B|Q?text?=) to text, written for the way Japanese mail
// really arrives. libmime's decodeWords gets the common forms right, but it joins adjacent words
// only when both are B or both are Q, and decodes an unknown charset label as UTF-8 (mojibake
// for Shift_JIS behind a made-up label). Here every encoded word becomes bytes first, and a run
// of adjacent words in the same charset is decoded as one byte string, so a character that a
// broken mailer split across two words (or across a B and a Q word) comes out whole.
import { Buffer } from "node:buffer";
import { normalizeCharset } from "libmime/lib/charset.js";
import { decodeCharset } from "./charsets.js";

// The charset token excludes "?" and whitespace only: labels such as ANSI_X3.4-1968 contain dots.
// The text may hold spaces: broken mailers leave them in Q words, and base64 decoding skips them.
const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?]*)\?=/g;
// RFC 2047 §6.2: whitespace between two adjacent encoded words is not displayed.
const ONLY_WHITESPACE = /^[ \t\r\n]*$/;
const BASE64_PADDING_THEN_DATA = /(?<==)(?=[^=])/;

function decodeB(text: string): Buffer {
  // Node's base64 decoder skips characters outside the alphabet but stops at padding, so a word
  // made of several padded chunks (as some mailers glue them) is decoded chunk by chunk.
  if (!BASE64_PADDING_THEN_DATA.test(text)) return Buffer.from(text, "base64");
  return Buffer.concat(text.split(BASE64_PADDING_THEN_DATA).map((chunk) => Buffer.from(chunk, "base64")));
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function decodeQ(text: string): Buffer {
  const out = Buffer.allocUnsafe(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5f) {
      out[n++] = 0x20;
      continue;
    }
    if (code === 0x3d && i + 2 < text.length) {
      const hi = hexValue(text.charCodeAt(i + 1));
      const lo = hexValue(text.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    // A stray "=" or a raw character is kept as it is: best effort, never an error.
    out[n++] = code & 0xff;
  }
  return out.subarray(0, n);
}

function sameCharset(a: string, b: string): boolean {
  return a === b || normalizeCharset(a) === normalizeCharset(b);
}

/**
 * Decodes every encoded word in an (unfolded or folded) header value; text outside encoded
 * words is kept as it is. Never throws: bad base64 yields what can be read, an unknown charset
 * is guessed from the bytes (see charsets.ts).
 */
export function decodeEncodedWords(value: string): string {
  if (!value.includes("=?")) return value;
  let out = "";
  let runCharset = "";
  let runBytes: Buffer[] = [];
  let last = 0;
  const flush = (): void => {
    if (runBytes.length === 0) return;
    const bytes = runBytes.length === 1 ? (runBytes[0] as Buffer) : Buffer.concat(runBytes);
    out += decodeCharset(bytes, runCharset);
    runBytes = [];
  };
  ENCODED_WORD.lastIndex = 0;
  for (let match = ENCODED_WORD.exec(value); match !== null; match = ENCODED_WORD.exec(value)) {
    const word = match[0];
    const encoding = match[2] as string;
    const start = match.index;
    const between = value.slice(last, start);
    // The RFC 2231 language suffix (UTF-8*ja) does not change the bytes: words differing only in it join.
    const label = match[1] as string;
    const star = label.indexOf("*");
    const charset = star === -1 ? label : label.slice(0, star);
    const bytes =
      encoding === "B" || encoding === "b" ? decodeB(match[3] as string) : decodeQ(match[3] as string);
    const adjacent = runBytes.length > 0 && ONLY_WHITESPACE.test(between);
    if (adjacent && sameCharset(charset, runCharset)) {
      runBytes.push(bytes);
    } else {
      flush();
      if (!adjacent) out += between;
      runCharset = charset;
      runBytes = [bytes];
    }
    last = start + word.length;
  }
  flush();
  return out + value.slice(last);
}
