import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import { bodyTexts } from "./body.js";

const TEXT = "迷惑メール 配信失敗のお知らせ";

describe("bodyTexts", () => {
  it("gives the decoded text parts and an attached message's header fields, skipping binary parts", () => {
    const head = Buffer.from('Content-Type: multipart/mixed; boundary="b"\n');
    const body = Buffer.concat([
      Buffer.from("--b\nContent-Type: text/plain; charset=ISO-2022-JP\n\n"),
      // "パスワード再設定のお知らせ" as a real mailer wrote it (fixture message 1491086).
      Buffer.from("GyRCJVElOSVvITwlSTpGQF9EaiROJCpDTiRpJDsbKEI=", "base64"),
      Buffer.from("\n--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"),
      Buffer.from(
        "--b\nContent-Type: message/rfc822\n\nSubject: =?UTF-8?B?5pyq5Yem55CG?=\nFrom: s@bad.example\n\n",
      ),
      iconv.encode(TEXT, "EUC-JP"),
      Buffer.from("\n--b--\n"),
    ]);
    assert.deepEqual(bodyTexts(head, body, false), [
      { path: "1", contentType: "text/plain", text: "パスワード再設定のお知らせ", truncated: false },
      {
        path: "3",
        contentType: "message/rfc822",
        text: "Subject: 未処理\nFrom: s@bad.example",
        truncated: false,
      },
      { path: "3.1", contentType: "text/plain", text: TEXT, truncated: false },
    ]);
  });

  it("reads a plain message without MIME headers, guessing the charset of raw 8-bit text", () => {
    const texts = bodyTexts(
      Buffer.from("Subject: x\n"),
      iconv.encode(`${TEXT}\nline two\n`, "Shift_JIS"),
      true,
    );
    assert.deepEqual(texts, [
      { path: "1", contentType: "text/plain", text: `${TEXT}\nline two\n`, truncated: true },
    ]);
  });
});
