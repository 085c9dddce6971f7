import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import { decodeCharset, decodeUnlabeled } from "./charsets.js";

const TEXT = "迷惑メール 配信失敗のお知らせ";
// "パスワード再設定のお知らせ" in ISO-2022-JP, as a real mailer wrote it (fixture message 1491086).
const FIXTURE_JIS = Buffer.from("GyRCJVElOSVvITwlSTpGQF9EaiROJCpDTiRpJDsbKEI=", "base64");

describe("decodeUnlabeled", () => {
  it("reads ASCII, UTF-8, ISO-2022-JP, Shift_JIS and EUC-JP from their bytes alone", () => {
    assert.equal(decodeUnlabeled(Buffer.from("failure notice")), "failure notice");
    assert.equal(decodeUnlabeled(Buffer.from(TEXT)), TEXT);
    assert.equal(decodeUnlabeled(FIXTURE_JIS), "パスワード再設定のお知らせ");
    assert.equal(decodeUnlabeled(iconv.encode(TEXT, "Shift_JIS")), TEXT);
    assert.equal(decodeUnlabeled(iconv.encode(TEXT, "EUC-JP")), TEXT);
  });

  it("tells EUC-JP from Shift_JIS when the bytes are valid in both", () => {
    // All bytes 0xA1-0xFE: as Shift_JIS this would be half-width katakana only.
    const euc = iconv.encode("のお知らせ", "EUC-JP");
    assert.equal(decodeUnlabeled(euc), "のお知らせ");
    const sjis = iconv.encode("のお知らせ", "Shift_JIS");
    assert.equal(decodeUnlabeled(sjis), "のお知らせ");
  });

  it("falls back to windows-1252 for 8-bit text that is no Japanese charset, and never throws", () => {
    assert.equal(decodeUnlabeled(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff])), "café ÿ");
    assert.equal(decodeUnlabeled(Buffer.from([0x00, 0x41, 0x00])), "\u0000A\u0000");
  });
});

describe("decodeCharset", () => {
  it("decodes ISO-2022-JP with half-width kana (ESC ( I, SO/SI) and the NEC symbols Windows mailers send", () => {
    assert.equal(decodeCharset(Buffer.from("1b2849313233341b2842", "hex"), "ISO-2022-JP"), "ｱｲｳｴ");
    assert.equal(decodeCharset(Buffer.from("0e31320f41", "hex"), "ISO-2022-JP"), "ｱｲA");
    // Row 13 of CP50220: ① and ㈱, then back to ASCII.
    assert.equal(decodeCharset(Buffer.from("1b24422d212d6a1b284241", "hex"), "iso-2022-jp"), "①㈱A");
  });

  it("ends a double-byte run at a line break, as RFC 1468 requires", () => {
    assert.equal(decodeCharset(Buffer.from("1b2442252f0a4142", "hex"), "ISO-2022-JP"), "ク\nAB");
  });

  it("decodes what an iconv-lite charset label names", () => {
    assert.equal(decodeCharset(iconv.encode("Grüße", "ISO-8859-1"), "iso-8859-1"), "Grüße");
    assert.equal(decodeCharset(iconv.encode(TEXT, "Shift_JIS"), "CP932"), TEXT);
    assert.equal(decodeCharset(iconv.encode(TEXT, "EUC-JP"), "x-euc-jp"), TEXT);
  });

  it("guesses when the label is unknown, refused (UTF-7) or contradicted by the bytes", () => {
    const sjis = iconv.encode(TEXT, "Shift_JIS");
    assert.equal(decodeCharset(sjis, "x-no-such-charset"), TEXT);
    assert.equal(decodeCharset(sjis, "UTF-8"), TEXT);
    assert.equal(decodeCharset(sjis, "ISO-2022-JP"), TEXT);
    assert.equal(decodeCharset(Buffer.from("+ADw-script+AD4-"), "UTF-7"), "+ADw-script+AD4-");
    // The passing twins: the same labels on bytes that fit them.
    assert.equal(decodeCharset(Buffer.from(TEXT), "UTF-8"), TEXT);
    assert.equal(decodeCharset(FIXTURE_JIS, "ISO-2022-JP"), "パスワード再設定のお知らせ");
  });
});
