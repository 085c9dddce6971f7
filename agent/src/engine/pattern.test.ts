import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePattern, PatternError } from "./pattern.js";

describe("compilePattern", () => {
  it("matches case-sensitively or not, as asked", () => {
    const sensitive = compilePattern({ source: "Failure Notice", caseInsensitive: false });
    assert.equal(sensitive.test("Subject: Failure Notice"), true);
    assert.equal(sensitive.test("Subject: failure notice"), false);
    const insensitive = compilePattern({ source: "Failure Notice", caseInsensitive: true });
    assert.equal(insensitive.test("Subject: failure notice"), true);
  });

  it("matches Japanese text by its characters", () => {
    const p = compilePattern({ source: "配信.敗", caseInsensitive: false });
    assert.equal(p.test("迷惑メール 配信失敗のお知らせ"), true);
    assert.equal(p.test("迷惑メール 配信成功"), false);
    assert.equal(compilePattern({ source: "^\\p{Han}+$", caseInsensitive: false }).test("未処理"), true);
  });

  it("treats metacharacters as regex syntax (escape them to match literally)", () => {
    assert.equal(compilePattern({ source: "a.c", caseInsensitive: false }).test("abc"), true);
    assert.equal(compilePattern({ source: "a\\.c", caseInsensitive: false }).test("abc"), false);
    assert.equal(compilePattern({ source: "a\\.c", caseInsensitive: false }).test("a.c"), true);
  });

  it("runs a catastrophic pattern in linear time", () => {
    // With a backtracking engine this input takes longer than the universe has existed.
    const p = compilePattern({ source: "^(a+)+$", caseInsensitive: false });
    assert.equal(p.test(`${"a".repeat(100_000)}b`), false);
    assert.equal(p.test("a".repeat(100_000)), true);
  });

  it("names an invalid pattern and what is wrong with it", () => {
    assert.throws(
      () => compilePattern({ source: "(abc", caseInsensitive: false }),
      (err: unknown) =>
        err instanceof PatternError &&
        err.message === 'invalid pattern "(abc": missing ): (abc' &&
        err.source === "(abc",
    );
    assert.throws(
      () => compilePattern({ source: "[z-a]", caseInsensitive: true }),
      /invalid pattern "\[z-a\]": .*range/,
    );
    // The passing twin.
    assert.equal(compilePattern({ source: "(abc)", caseInsensitive: false }).test("xabcx"), true);
  });

  it("says that RE2 does not support backreferences and lookaround", () => {
    assert.throws(
      () => compilePattern({ source: "(a)\\1", caseInsensitive: false }),
      /invalid pattern "\(a\)\\\\1": .*does not support backreferences/,
    );
    assert.throws(
      () => compilePattern({ source: "foo(?=bar)", caseInsensitive: false }),
      /lookahead or lookbehind/,
    );
    assert.throws(
      () => compilePattern({ source: "(?<!x)foo", caseInsensitive: false }),
      /lookahead or lookbehind/,
    );
  });

  it("refuses an empty pattern, which would match every message", () => {
    assert.throws(
      () => compilePattern({ source: "", caseInsensitive: false }),
      /invalid pattern "": empty .*all/,
    );
    assert.equal(compilePattern({ source: " ", caseInsensitive: false }).test("a b"), true);
  });
});
