// Text for a terminal: how many columns it takes, cutting it to a width, and making mail text
// safe to print. Japanese subjects are the common case here: East Asian wide and fullwidth
// characters take two columns (UAX #11), so padding by string length would break every table
// with a kanji in it. Combining marks and zero-width characters take none.

// C0 controls but tab and line feed, DEL, C1 controls: what a terminal may act on. Everything
// shown comes from mail anyone can send: a Subject carrying ESC sequences must not drive the
// operator's terminal.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly what it must catch.
const TERMINAL_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** Text safe to print on a terminal: control characters shown as "?" (tab and line feed kept). */
export function printable(text: string): string {
  return text.replace(TERMINAL_CONTROL, "?");
}

/** One line, safe to print: line breaks and tabs as spaces, controls as "?". */
export function oneLine(text: string): string {
  return printable(text.replace(/[\r\n\t]+/g, " "));
}

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060\ufeff]$/u;

// East Asian Wide (W) and Fullwidth (F) ranges of UAX #11, the blocks mail text uses.
const WIDE: readonly [number, number][] = [
  [0x1100, 0x115f], // Hangul Jamo initials
  [0x2e80, 0x303e], // CJK radicals, Kangxi, ideographic description, CJK symbols and punctuation
  [0x3041, 0x33ff], // Hiragana, Katakana, Bopomofo, Hangul compatibility, Kanbun, CJK compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe30, 0xfe4f], // CJK compatibility forms
  [0xff00, 0xff60], // Fullwidth forms
  [0xffe0, 0xffe6], // Fullwidth signs
  [0x1f300, 0x1f64f], // Pictographs, emoticons
  [0x1f900, 0x1f9ff], // Supplemental pictographs
  [0x20000, 0x3fffd], // CJK extensions B and beyond
];

/** Columns one character (code point) takes: 0, 1 or 2. */
export function charWidth(char: string): number {
  if (ZERO_WIDTH.test(char)) return 0;
  const code = char.codePointAt(0) ?? 0;
  for (const [low, high] of WIDE) {
    if (code < low) return 1;
    if (code <= high) return 2;
  }
  return 1;
}

/** Columns the text takes on a terminal. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += charWidth(char);
  return width;
}

/**
 * The text cut to at most `width` columns ("…" marks a cut) and padded with spaces to exactly
 * `width`: a wide character that would straddle the edge is left out, not split.
 */
export function fitWidth(text: string, width: number): string {
  const full = displayWidth(text);
  if (full <= width) return text + " ".repeat(width - full);
  let out = "";
  let used = 0;
  for (const char of text) {
    const w = charWidth(char);
    // Keep one column for the ellipsis.
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  return `${out}…${" ".repeat(Math.max(0, width - used - 1))}`;
}

/** The text padded on the left to `width` columns (numbers in right-aligned columns). */
export function padStartWidth(text: string, width: number): string {
  return " ".repeat(Math.max(0, width - displayWidth(text))) + text;
}
