import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import libmime from "libmime";
import { decodeEncodedWords } from "./rfc2047.js";

const TEXT = "迷惑メール 配信失敗のお知らせ";

/**
 * ISO-2022-JP as mailers write it: iconv-lite cannot encode it, but EUC-JP holds the same JIS
 * X 0208 codes with the high bit set, so shifting runs of EUC-JP pairs back is exact. The test
 * "matches the bytes a real mailer wrote" below proves this encoder against the fixture.
 */
function iso2022jp(text: string): Buffer {
  const euc = iconv.encode(text, "EUC-JP");
  const out: number[] = [];
  let kanji = false;
  for (const b of euc) {
    if (b >= 0x80 && !kanji) out.push(0x1b, 0x24, 0x42);
    if (b < 0x80 && kanji) out.push(0x1b, 0x28, 0x42);
    kanji = b >= 0x80;
    out.push(b & 0x7f);
  }
  if (kanji) out.push(0x1b, 0x28, 0x42);
  return Buffer.from(out);
}

const b64Word = (charset: string, bytes: Buffer): string => `=?${charset}?B?${bytes.toString("base64")}?=`;
const qWord = (charset: string, bytes: Buffer): string =>
  `=?${charset}?Q?${[...bytes].map((b) => `=${b.toString(16).toUpperCase().padStart(2, "0")}`).join("")}?=`;

// The Subject lines of the real queue in /work/shared/fixtures/real-qmail-queue.json, byte for
// byte: message 1491086 (one word) and 1491116 (folded over two words, split inside "ワ").
const FIXTURE_ONE_WORD = "=?ISO-2022-JP?B?GyRCJVElOSVvITwlSTpGQF9EaiROJCpDTiRpJDsbKEI=?=";
const FIXTURE_SPLIT = "=?ISO-2022-JP?B?GyRCJVElOSU=?=\n =?ISO-2022-JP?B?byE8JUk6RkBfRGokTiQqQ04kaSQ7GyhC?=";
const FIXTURE_TEXT = "パスワード再設定のお知らせ";

describe("decodeEncodedWords", () => {
  it("decodes the real queue's ISO-2022-JP subjects, including the one split inside a character", () => {
    assert.equal(decodeEncodedWords(FIXTURE_ONE_WORD), FIXTURE_TEXT);
    assert.equal(decodeEncodedWords(FIXTURE_SPLIT), FIXTURE_TEXT);
    assert.equal(decodeEncodedWords(FIXTURE_SPLIT.replace("\n", "")), FIXTURE_TEXT);
    // The first word alone ends in half a character: proof the join is what makes it whole.
    assert.notEqual(decodeEncodedWords(FIXTURE_SPLIT.split("\n")[0] as string), "パス");
  });

  it("matches the bytes a real mailer wrote (the test encoder is right)", () => {
    assert.equal(b64Word("ISO-2022-JP", iso2022jp(FIXTURE_TEXT)), FIXTURE_ONE_WORD);
  });

  it("decodes ISO-2022-JP, UTF-8, Shift_JIS and EUC-JP in B and Q, any case of label", () => {
    const forms: [string, Buffer][] = [
      ["ISO-2022-JP", iso2022jp(TEXT)],
      ["iso-2022-jp", iso2022jp(TEXT)],
      ["UTF-8", Buffer.from(TEXT)],
      ["utf-8", Buffer.from(TEXT)],
      ["Shift_JIS", iconv.encode(TEXT, "Shift_JIS")],
      ["SHIFT-JIS", iconv.encode(TEXT, "Shift_JIS")],
      ["windows-31j", iconv.encode(TEXT, "Shift_JIS")],
      ["EUC-JP", iconv.encode(TEXT, "EUC-JP")],
      ["euc-jp", iconv.encode(TEXT, "EUC-JP")],
    ];
    for (const [charset, bytes] of forms) {
      assert.equal(decodeEncodedWords(b64Word(charset, bytes)), TEXT, `${charset} B`);
      assert.equal(decodeEncodedWords(b64Word(charset, bytes).replace("?B?", "?b?")), TEXT, `${charset} b`);
      assert.equal(decodeEncodedWords(qWord(charset, bytes)), TEXT, `${charset} Q`);
    }
  });

  it("ignores an RFC 2231 language suffix on the charset", () => {
    assert.equal(decodeEncodedWords(b64Word("UTF-8*ja", Buffer.from(TEXT))), TEXT);
    assert.equal(decodeEncodedWords(b64Word("ISO-2022-JP*ja-JP", iso2022jp(TEXT))), TEXT);
  });

  it("joins a character split across two words, in every charset, B or Q, and folded", () => {
    const forms: [string, Buffer][] = [
      ["ISO-2022-JP", iso2022jp(TEXT)],
      ["UTF-8", Buffer.from(TEXT)],
      ["Shift_JIS", iconv.encode(TEXT, "Shift_JIS")],
      ["EUC-JP", iconv.encode(TEXT, "EUC-JP")],
    ];
    for (const [charset, bytes] of forms) {
      // An odd offset after the shift lands inside a two- or three-byte character.
      const cut = charset === "ISO-2022-JP" ? 6 : 7;
      const left = bytes.subarray(0, cut);
      const right = bytes.subarray(cut);
      assert.equal(decodeEncodedWords(`${b64Word(charset, left)} ${b64Word(charset, right)}`), TEXT, charset);
      assert.equal(
        decodeEncodedWords(`${b64Word(charset, left)}\r\n\t${qWord(charset, right)}`),
        TEXT,
        charset,
      );
      assert.equal(
        decodeEncodedWords(`${qWord(charset, left)}${b64Word(charset.toLowerCase(), right)}`),
        TEXT,
        charset,
      );
    }
  });

  it("joins a split character across a B and a Q word, which libmime's decodeWords does not", () => {
    const bytes = Buffer.from("未処理");
    const mixed = `${b64Word("UTF-8", bytes.subarray(0, 2))} ${qWord("UTF-8", bytes.subarray(2))}`;
    assert.notEqual(libmime.decodeWords(mixed), "未処理");
    assert.equal(decodeEncodedWords(mixed), "未処理");
  });

  it("drops whitespace between adjacent words but keeps text and spaces around them", () => {
    const a = b64Word("UTF-8", Buffer.from("迷惑"));
    const b = b64Word("ISO-2022-JP", iso2022jp("メール"));
    assert.equal(decodeEncodedWords(`${a}   ${b}`), "迷惑メール");
    assert.equal(decodeEncodedWords(`Re: ${a} x ${b} (2)`), "Re: 迷惑 x メール (2)");
    assert.equal(decodeEncodedWords(`[spam]${a}`), "[spam]迷惑");
  });

  it("decodes Q underscores as spaces and keeps a stray '=' literally", () => {
    assert.equal(decodeEncodedWords("=?UTF-8?Q?failure_notice=3D=ZZ?="), "failure notice==ZZ");
  });

  it("reads what it can of bad base64 and never throws", () => {
    assert.equal(decodeEncodedWords("=?UTF-8?B?5py!!!q5Yem 55CG?="), "未処理");
    // Two padded chunks glued into one word by a broken mailer.
    const glued = `=?UTF-8?B?${Buffer.from("未").toString("base64")}${Buffer.from("処理").toString("base64")}?=`;
    assert.equal(decodeEncodedWords(glued), "未処理");
    assert.equal(decodeEncodedWords("=?UTF-8?B?====?="), "");
  });

  it("guesses the charset of a word whose label is unknown instead of reading it as UTF-8", () => {
    assert.equal(decodeEncodedWords(b64Word("x-unknown", iconv.encode(TEXT, "Shift_JIS"))), TEXT);
    assert.equal(decodeEncodedWords(b64Word("x-unknown", Buffer.from(TEXT))), TEXT);
    // A UTF-8 label on Shift_JIS bytes (old Japanese mailers do this) is corrected too.
    assert.equal(decodeEncodedWords(b64Word("UTF-8", iconv.encode(TEXT, "Shift_JIS"))), TEXT);
  });

  it("leaves text without encoded words, and malformed words, as they are", () => {
    assert.equal(decodeEncodedWords("failure notice"), "failure notice");
    assert.equal(decodeEncodedWords("=?UTF-8?X?abc?="), "=?UTF-8?X?abc?=");
    assert.equal(decodeEncodedWords("=?UTF-8?B?5pyq"), "=?UTF-8?B?5pyq");
  });
});
