import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { displayWidth, fitWidth, oneLine, padStartWidth, printable } from "./text-width.js";

describe("displayWidth", () => {
  it("counts East Asian wide and fullwidth characters as two columns", () => {
    assert.equal(displayWidth("failure notice"), 14);
    assert.equal(displayWidth("配信失敗のお知らせ"), 18);
    assert.equal(displayWidth("セール開催中！最大50%OFF"), 9 * 2 + 6);
    assert.equal(displayWidth("【重要】"), 8);
    assert.equal(displayWidth("ｱｲｳ"), 3, "halfwidth katakana is narrow");
  });

  it("counts combining marks and zero-width characters as none", () => {
    assert.equal(displayWidth("e\u0301"), 1);
    assert.equal(displayWidth("a\u200bb"), 2);
  });
});

describe("fitWidth", () => {
  it("pads short text to the width", () => {
    assert.equal(fitWidth("abc", 6), "abc   ");
    assert.equal(fitWidth("配信", 6), "配信  ");
  });

  it("cuts long text at the width with an ellipsis, never splitting a wide character", () => {
    assert.equal(fitWidth("failure notice", 8), "failure…");
    const cut = fitWidth("配信失敗のお知らせ", 8);
    assert.equal(cut, "配信失… ");
    assert.equal(displayWidth(cut), 8);
    assert.equal(displayWidth(fitWidth("配信失敗のお知らせ", 9)), 9);
    assert.equal(fitWidth("配信失敗のお知らせ", 9), "配信失敗…");
  });

  it("keeps text that fits exactly", () => {
    assert.equal(fitWidth("配信失敗", 8), "配信失敗");
  });
});

describe("padStartWidth", () => {
  it("right-aligns by columns", () => {
    assert.equal(padStartWidth("12", 5), "   12");
    assert.equal(padStartWidth("配信", 5), " 配信");
  });
});

describe("printable / oneLine", () => {
  it("shows terminal controls as ? and keeps text", () => {
    assert.equal(printable("a\x1b[2Jb\tc\n"), "a?[2Jb\tc\n");
    assert.equal(oneLine("Re: a\r\n\tb"), "Re: a b");
    assert.equal(oneLine("配信\x07失敗"), "配信?失敗");
  });
});
