// Bytes to text, for header values and body parts: in the charset a label names, or, when
// the label is missing, unknown or plainly wrong, in the charset the bytes themselves betray.
// Queued mail in Japan is mostly ISO-2022-JP, Shift_JIS, EUC-JP or UTF-8, and broken mailers
// send raw 8-bit headers or mislabel their parts, so the guess only has to tell those apart.
// Nothing here throws: text that fits no charset comes out as windows-1252, byte for byte.
import { Buffer, isUtf8 } from "node:buffer";
import iconv from "iconv-lite";
import { normalizeCharset } from "libmime/lib/charset.js";
import { TableDecoder } from "./table-decoder.js";

// ESC $ @, ESC $ B (JIS X 0208), ESC $ ( D (JIS X 0212), ESC ( B/J/I (ASCII, Roman, kana):
// the shifts only ISO-2022-JP uses. Seven-bit text carrying one of them is ISO-2022-JP.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what ISO-2022-JP shifts start with.
const ISO_2022_JP_SHIFT = /\x1b(?:\$[@B]|\$\(D|\([BJI])/;
const ISO_2022_JP_LABEL = /^(?:cs)?(?:iso-?2022-?jp|jis)/i;
const ASCII_COMPATIBLE_LABEL = /^(?:(?:us-?)?ascii|utf-?8|unicode-1-1-utf-8|7bit|8bit)$/i;
// iconv-lite codecs that are not charsets a message could be written in: UTF-7 smuggles markup
// past filters, base64 and hex are transfer encodings. libmime refuses them for the same reason.
const REFUSED_CODECS = new Set(["utf7", "utf7imap", "base64", "hex"].map((name) => iconv.getCodec(name)));

const ESC = 0x1b;

const EUC_JP = new TableDecoder("EUC-JP");
const SHIFT_JIS = new TableDecoder("Shift_JIS");
/** The table decoders by iconv-lite codec, so that a label naming one of them (CP932, x-euc-jp) finds it. */
const TABLE_DECODERS = new Map([
  [iconv.getCodec("EUC-JP"), EUC_JP],
  [iconv.getCodec("Shift_JIS"), SHIFT_JIS],
]);

/**
 * ISO-2022-JP (RFC 1468, with the JIS X 0212 and half-width kana shifts of its relatives) to
 * text, by rewriting it as EUC-JP, which holds the same JIS rows with the high bit set, and
 * decoding that with iconv-lite. iconv-lite has no ISO-2022-JP; libmime uses encoding-japanese
 * for it, which costs ~15 µs per subject (most of a scan's time) and turns the NEC row 13
 * symbols (①, ㈱ - common in Windows-made "ISO-2022-JP") that iconv-lite knows into "?".
 */
function decodeIso2022Jp(bytes: Buffer): string {
  const euc = Buffer.allocUnsafe(bytes.length * 2);
  let n = 0;
  // 0 ASCII / JIS Roman, 1 JIS X 0208, 2 JIS X 0212, 3 half-width katakana
  let mode = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === ESC) {
      const b1 = bytes[i + 1];
      const b2 = bytes[i + 2];
      if (b1 === 0x28 && (b2 === 0x42 || b2 === 0x4a)) mode = 0;
      else if (b1 === 0x28 && b2 === 0x49) mode = 3;
      else if (b1 === 0x24 && (b2 === 0x40 || b2 === 0x42)) mode = 1;
      else if (b1 === 0x24 && b2 === 0x28 && bytes[i + 3] === 0x44) {
        mode = 2;
        i += 1;
      } else {
        // An escape of ISO-2022-JP-2 or of nothing: dropped, the text around it kept.
        continue;
      }
      i += 2;
    } else if (b === 0x0e) {
      mode = 3; // SO: JIS7 half-width katakana
    } else if (b === 0x0f) {
      mode = 0; // SI
    } else if (mode === 0 || b < 0x21 || b > 0x7e) {
      // Controls and spaces pass in every mode; a line break ends a double-byte run (RFC 1468).
      if (b === 0x0a || b === 0x0d) mode = mode === 3 ? 3 : 0;
      euc[n++] = b;
    } else if (mode === 3) {
      euc[n++] = 0x8e;
      euc[n++] = b | 0x80;
    } else {
      if (mode === 2) euc[n++] = 0x8f;
      euc[n++] = b | 0x80;
      const trail = bytes[i + 1];
      if (trail !== undefined && trail >= 0x21 && trail <= 0x7e) {
        euc[n++] = trail | 0x80;
        i += 1;
      }
    }
  }
  return EUC_JP.decode(euc.subarray(0, n));
}

type Resolved =
  | { kind: "utf8" }
  | { kind: "iso2022jp" }
  | { kind: "iconv"; decode: (bytes: Buffer) => string }
  | { kind: "unknown" };

// Labels come from mail, so a sender could fill an unbounded cache with made-up names.
const RESOLVED_CACHE_LIMIT = 512;
const resolvedCache = new Map<string, Resolved>();

function resolveLabel(label: string): Resolved {
  const cached = resolvedCache.get(label);
  if (cached) return cached;
  const resolved = resolveUncached(label);
  if (resolvedCache.size >= RESOLVED_CACHE_LIMIT) resolvedCache.clear();
  resolvedCache.set(label, resolved);
  return resolved;
}

function resolveUncached(label: string): Resolved {
  // RFC 2231 lets an encoded word carry a language after the charset: UTF-8*ja.
  const bare = (label.split("*", 1)[0] ?? "").trim();
  if (bare === "" || ASCII_COMPATIBLE_LABEL.test(bare)) return { kind: "utf8" };
  if (ISO_2022_JP_LABEL.test(bare)) return { kind: "iso2022jp" };
  const name = normalizeCharset(bare);
  if (!iconv.encodingExists(name)) return { kind: "unknown" };
  const codec = iconv.getCodec(name);
  if (REFUSED_CODECS.has(codec)) return { kind: "unknown" };
  const table = TABLE_DECODERS.get(codec);
  return {
    kind: "iconv",
    decode: table ? (bytes) => table.decode(bytes) : (bytes) => iconv.decode(bytes, name),
  };
}

function hasHighByte(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] as number) >= 0x80) return true;
  }
  return false;
}

/** True when `bytes` is a well-formed EUC-JP sequence (JIS X 0208, half-width kana, JIS X 0212). */
function isEucJp(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < 0x80) continue;
    const b1 = bytes[i + 1];
    if (b === 0x8e) {
      if (b1 === undefined || b1 < 0xa1 || b1 > 0xdf) return false;
      i += 1;
    } else if (b === 0x8f) {
      const b2 = bytes[i + 2];
      if (b1 === undefined || b2 === undefined || b1 < 0xa1 || b2 < 0xa1 || b1 === 0xff || b2 === 0xff)
        return false;
      i += 2;
    } else if (b >= 0xa1 && b <= 0xfe) {
      if (b1 === undefined || b1 < 0xa1 || b1 > 0xfe) return false;
      i += 1;
    } else {
      return false;
    }
  }
  return true;
}

/** True when `bytes` is well-formed Shift_JIS (CP932 lead and trail byte ranges). */
function isShiftJis(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < 0x80 || (b >= 0xa1 && b <= 0xdf)) continue;
    if ((b >= 0x81 && b <= 0x9f) || (b >= 0xe0 && b <= 0xfc)) {
      const b1 = bytes[i + 1];
      if (b1 === undefined || b1 < 0x40 || b1 === 0x7f || b1 > 0xfc) return false;
      i += 1;
    } else {
      return false;
    }
  }
  return true;
}

/**
 * Bytes in 0x80-0xA0 other than EUC-JP's single shifts 0x8E/0x8F never occur in EUC-JP, while
 * Shift_JIS text is full of them (hiragana lead 0x82, katakana 0x83, most kanji 0x88-0x9F).
 * Text valid in both (all bytes 0xA1-0xFE) is EUC-JP: as Shift_JIS it would be nothing but
 * half-width katakana, which nobody writes a whole subject in.
 */
function hasShiftJisOnlyByte(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b >= 0x80 && b <= 0xa0 && b !== 0x8e && b !== 0x8f) return true;
  }
  return false;
}

/**
 * Text from bytes that carry no charset label (raw 8-bit headers) or a label we cannot use:
 * ASCII, ISO-2022-JP by its escape sequences, UTF-8 when well formed, then Shift_JIS or EUC-JP,
 * and windows-1252 (every byte is some character) when nothing fits.
 */
export function decodeUnlabeled(bytes: Buffer): string {
  if (!hasHighByte(bytes)) {
    const ascii = bytes.toString("latin1");
    return ISO_2022_JP_SHIFT.test(ascii) ? decodeIso2022Jp(bytes) : ascii;
  }
  if (isUtf8(bytes)) return bytes.toString("utf8");
  const sjis = isShiftJis(bytes);
  const euc = isEucJp(bytes);
  if (euc && (!sjis || !hasShiftJisOnlyByte(bytes))) return EUC_JP.decode(bytes);
  if (sjis) return SHIFT_JIS.decode(bytes);
  return iconv.decode(bytes, "windows-1252");
}

/**
 * Text from bytes a label says are in `label` (a MIME charset name, any case, RFC 2231 `*lang`
 * allowed). Falls back to guessing when the label is unknown or the bytes cannot be in it:
 * "UTF-8" that is not well-formed UTF-8, or "ISO-2022-JP" (a 7-bit charset) holding 8-bit bytes,
 * both common from old Japanese mailers that label Shift_JIS wrongly.
 */
export function decodeCharset(bytes: Buffer, label: string): string {
  const resolved = resolveLabel(label);
  switch (resolved.kind) {
    case "utf8":
      return isUtf8(bytes) ? bytes.toString("utf8") : decodeUnlabeled(bytes);
    case "iso2022jp":
      return hasHighByte(bytes) ? decodeUnlabeled(bytes) : decodeIso2022Jp(bytes);
    case "iconv":
      return resolved.decode(bytes);
    case "unknown":
      return decodeUnlabeled(bytes);
  }
}
