import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Base64Stream, RawText } from "./show-view.js";

describe("Base64Stream", () => {
  it("gives the base64 of the whole, whatever the chunk sizes", () => {
    const bytes = Buffer.from("Subject: 配信失敗のお知らせ\n\nbody\n");
    for (const size of [1, 2, 4, 5, 7, 64]) {
      const stream = new Base64Stream();
      let out = "";
      for (let i = 0; i < bytes.length; i += size) out += stream.chunk(bytes.subarray(i, i + size));
      out += stream.end();
      assert.equal(out, bytes.toString("base64"), `chunks of ${size}`);
    }
  });
});

describe("RawText", () => {
  it("decodes UTF-8 split across chunks, and ends on a line of its own", () => {
    const bytes = Buffer.from("a 配信\nb");
    const raw = new RawText();
    // Cut inside the three bytes of 配.
    const out =
      raw.chunk(bytes.subarray(0, 3)) + raw.chunk(bytes.subarray(3)) + raw.end(bytes.length, bytes.length);
    assert.equal(out, "a 配信\nb\n");
  });

  it("says where --max-bytes cut the message, and hides terminal controls", () => {
    const raw = new RawText();
    const out = raw.chunk(Buffer.from("X-Evil: \x1b[2J\n")) + raw.end(14, 500);
    assert.equal(out, "X-Evil: ?[2J\n--- cut at 14 of 500 bytes (--max-bytes) ---\n");
  });
});
