// Operator patterns (qmHandle's -F -h -H -b -B -X and our extras) compiled with RE2. They run as
// root over every queued message, so the engine must be linear-time: with RE2 a catastrophic
// pattern such as ^(a+)+$ costs what any other does, and cannot hang the agent. The price is
// Perl's backreferences and lookaround, which RE2 refuses; the error says so.
//
// Matching is on JavaScript strings (decoded text), not Buffers: re2 is ~20x faster on a Buffer
// for kilobyte inputs converted afresh each call (toolchain.md), but the lines tested here are
// short (0.1 µs either way, measured), and a string keeps "." one character in UTF-8 text.
import type { Buffer } from "node:buffer";
import RE2 from "re2";
import type { PatternSpec } from "./model.js";

export interface CompiledPattern {
  readonly source: string;
  readonly caseInsensitive: boolean;
  test(text: string): boolean;
  /**
   * Whether some line of `text` (LF-separated plain ASCII bytes, e.g. a header block) matches,
   * found with one search of the whole buffer instead of one test per line: true or false when
   * that search answers for the lines, undefined when it cannot (a match running over a line
   * break, a CR in the text, or a pattern whose anchors see the whole text: \A, \z, inline flags).
   */
  testLines(text: Buffer): boolean | undefined;
}

/** A pattern an operator typed that cannot be used; the message names it and says why. */
export class PatternError extends Error {
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super(`invalid pattern ${JSON.stringify(source)}: ${reason}`);
    this.name = "PatternError";
  }
}

/** What RE2 refuses that Perl (qmHandle) accepts, as RE2 reports it, and what to say instead. */
function explain(reason: string): string {
  if (/^invalid escape sequence: \\[1-9]/.test(reason)) {
    return `${reason} (RE2, the linear-time engine that keeps patterns from hanging the agent, does not support backreferences)`;
  }
  if (/^invalid perl operator: \(\?<?[=!]/.test(reason)) {
    return `${reason} (RE2, the linear-time engine that keeps patterns from hanging the agent, does not support lookahead or lookbehind)`;
  }
  if (/^invalid perl operator: \(\?>/.test(reason)) {
    return `${reason} (RE2 does not support atomic groups; they are not needed, RE2 never backtracks)`;
  }
  return reason;
}

/**
 * Compiles an operator pattern. An empty pattern is refused: it would match every message, and
 * "every message" must be said explicitly (qmHandle's -D, the `all` criterion).
 */
export function compilePattern(spec: PatternSpec): CompiledPattern {
  if (spec.source === "") {
    throw new PatternError(spec.source, "empty (it would match every message; say `all` (-D) to mean that)");
  }
  let re: RE2;
  try {
    // "u": "." and character classes take whole characters of Japanese text.
    re = new RE2(spec.source, spec.caseInsensitive ? "iu" : "u");
  } catch (err) {
    throw new PatternError(spec.source, explain((err as Error).message));
  }
  // "m": ^ and $ match at every line of the buffer, as they do on each line alone. Whether a
  // miss on the whole buffer is a miss on every line depends on nothing else but \A, \z and
  // inline flags (which can turn "m" off), looked for crudely: a false alarm only costs speed.
  const lines = new RE2(spec.source, spec.caseInsensitive ? "imu" : "mu");
  const missIsFinal = !/\\[Az]|\(\?/.test(spec.source);
  return {
    source: spec.source,
    caseInsensitive: spec.caseInsensitive,
    test: (text) => re.test(text),
    testLines: (text) => {
      // test() costs half what exec() does: most blocks searched hold no match at all.
      const found = lines.test(text) ? lines.exec(text) : null;
      if (found) {
        const match = found[0] as unknown as Buffer;
        // An empty match after the last line break (^$, a?) is on no line at all.
        const pastLastLine =
          found.index === text.length && (text.length === 0 || text[text.length - 1] === 0x0a);
        return pastLastLine || match.includes(0x0a) || match.includes(0x0d) ? undefined : true;
      }
      // "foo$" misses "foo\r\n" in the buffer but matches the line "foo".
      return missIsFinal && !text.includes(0x0d) ? false : undefined;
    },
  };
}
