import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import { TableDecoder } from "./table-decoder.js";

const CHARSETS = ["EUC-JP", "Shift_JIS"] as const;

/** A small deterministic generator (xorshift32): the same "random" bytes on every run. */
function bytesFrom(seed: number): (length: number, pick: (r: number) => number) => Buffer {
  let state = seed;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  return (length, pick) => Buffer.from(Array.from({ length }, () => pick(next())));
}

/** Runs `body` with iconv.decode counting its calls; returns the count. */
function countingIconv(body: () => void): number {
  const original = iconv.decode;
  let calls = 0;
  iconv.decode = (...args: Parameters<typeof iconv.decode>) => {
    calls++;
    return original(...args);
  };
  try {
    body();
  } finally {
    iconv.decode = original;
  }
  return calls;
}

describe("TableDecoder", () => {
  for (const charset of CHARSETS) {
    it(`decodes every byte and every byte pair of ${charset} as iconv-lite does, alone and between text`, () => {
      const decoder = new TableDecoder(charset);
      for (let first = 0; first < 256; first++) {
        const one = Buffer.from([first]);
        assert.equal(decoder.decode(one), iconv.decode(one, charset), `byte ${first.toString(16)}`);
        for (let second = 0; second < 256; second++) {
          const pair = Buffer.from([0x41, first, second, 0x42, first, second]);
          assert.equal(decoder.decode(pair), iconv.decode(pair, charset), `pair ${pair.toString("hex")}`);
        }
      }
    });

    it(`decodes random ${charset} bytes, valid and broken, as iconv-lite does`, () => {
      const decoder = new TableDecoder(charset);
      const random = bytesFrom(0x9e3779b9);
      for (let round = 0; round < 20_000; round++) {
        // Mostly high bytes (double-byte text), some ASCII and controls: every mix of lead,
        // second, stray and truncated bytes comes up.
        const bytes = random(1 + (round % 40), (r) => (r % 4 === 0 ? r % 0x80 : 0x80 + (r % 0x80)));
        assert.equal(decoder.decode(bytes), iconv.decode(bytes, charset), bytes.toString("hex"));
      }
    });
  }

  it("decodes text of known characters from its tables, without iconv-lite", () => {
    const decoder = new TableDecoder("EUC-JP");
    const text = iconv.encode("セール開催中！最大50％OFF ｶﾅ", "EUC-JP");
    decoder.decode(text);
    let decoded = "";
    assert.equal(
      countingIconv(() => {
        decoded = decoder.decode(text);
      }),
      0,
    );
    assert.equal(decoded, "セール開催中！最大50％OFF ｶﾅ");
  });

  it("hands iconv-lite the text it cannot decode from the tables: unmapped pairs, three-byte sequences, a lead byte at the end", () => {
    const decoder = new TableDecoder("EUC-JP");
    for (const hex of ["a4a2a9a1", "8fb0a1a4a2", "41a4a2a4"]) {
      const bytes = Buffer.from(hex, "hex");
      let decoded = "";
      assert.equal(
        countingIconv(() => {
          decoded = decoder.decode(bytes);
        }),
        1,
        hex,
      );
      assert.equal(decoded, iconv.decode(bytes, "EUC-JP"), hex);
    }
  });
});
