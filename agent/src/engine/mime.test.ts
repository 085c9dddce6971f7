import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import { cutHeaderBlock } from "./headers.js";
import { decodeTransfer, type MimePart, partText, walkMime } from "./mime.js";

const TEXT = "迷惑メール 配信失敗のお知らせ";

/** Splits a whole message into what walkMime takes, as the scan does. */
function walk(message: Buffer | string, cap = Number.POSITIVE_INFINITY): MimePart[] {
  const bytes = typeof message === "string" ? Buffer.from(message) : message;
  const cut = cutHeaderBlock(bytes);
  const bodyAt = cut.block.length + (bytes[cut.block.length] === 0x0d ? 2 : 1);
  const body = bytes.subarray(bodyAt);
  return walkMime(cut.block, body.subarray(0, Math.min(cap, body.length)), body.length > cap);
}

const outline = (parts: MimePart[]) =>
  parts.map((p) => [
    p.path,
    p.contentType,
    p.charset,
    p.transferEncoding,
    p.filename,
    p.container,
    p.truncated,
  ]);

const b64 = (bytes: Buffer | string) => Buffer.from(bytes).toString("base64");

const MIXED = [
  "From: a@x",
  'Content-Type: multipart/mixed; boundary="outer"',
  "",
  "preamble, not a part",
  "--outer",
  'Content-Type: multipart/alternative; boundary="inner"',
  "",
  "--inner",
  "Content-Type: text/plain; charset=Shift_JIS",
  "Content-Transfer-Encoding: base64",
  "",
  b64(iconv.encode(TEXT, "Shift_JIS")),
  "--inner",
  "Content-Type: text/html; charset=UTF-8",
  "Content-Transfer-Encoding: quoted-printable",
  "",
  '<p class=3D"x">caf=C3=A9 soft=',
  "break</p>",
  "--inner--",
  "--outer",
  'Content-Type: application/pdf; name="=?UTF-8?B?5pyq5Yem55CG?=.pdf"',
  "Content-Disposition: attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82.pdf",
  "Content-Transfer-Encoding: base64",
  "",
  b64("%PDF-1.4"),
  "--outer",
  "Content-Type: message/rfc822",
  "",
  "Subject: original",
  "From: spammer@bad.example",
  "",
  "original body",
  "--outer--",
  "epilogue",
  "",
].join("\n");

describe("walkMime", () => {
  it("outlines nested multiparts, attachments and an attached message with tree paths", () => {
    assert.deepEqual(outline(walk(MIXED)), [
      ["", "multipart/mixed", "", "7bit", "", true, false],
      ["1", "multipart/alternative", "", "7bit", "", true, false],
      ["1.1", "text/plain", "Shift_JIS", "base64", "", false, false],
      ["1.2", "text/html", "UTF-8", "quoted-printable", "", false, false],
      ["2", "application/pdf", "", "base64", "請求.pdf", false, false],
      ["3", "message/rfc822", "", "7bit", "", true, false],
      ["3.1", "text/plain", "", "7bit", "", false, false],
    ]);
  });

  it("decodes base64 and quoted-printable bodies in their charsets", () => {
    const parts = walk(MIXED);
    assert.equal(partText(parts[2] as MimePart), TEXT);
    assert.equal(partText(parts[3] as MimePart), '<p class="x">café softbreak</p>');
    assert.equal(decodeTransfer(parts[4] as MimePart).toString(), "%PDF-1.4");
    assert.equal(partText(parts[6] as MimePart), "original body");
  });

  it("reads the file name from an RFC 2047 name= when there is no Content-Disposition", () => {
    const parts = walk(
      'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf; name="=?UTF-8?B?5pyq5Yem55CG?=.pdf"\n\nx\n--b--\n',
    );
    assert.equal(parts[1]?.filename, "未処理.pdf");
  });

  it("numbers a single-part message's body 1 and defaults to text/plain", () => {
    assert.deepEqual(outline(walk("Subject: x\n\nhello\n")), [
      ["1", "text/plain", "", "7bit", "", false, false],
    ]);
    assert.equal(partText(walk("Subject: x\n\nhello\n")[0] as MimePart), "hello\n");
  });

  it("handles CRLF messages and padding after delimiters, and measures parts without the line break before a delimiter", () => {
    const crlf = MIXED.replaceAll("\n", "\r\n").replace("--inner--", "--inner--  \t");
    const parts = walk(crlf);
    assert.deepEqual(outline(parts), outline(walk(MIXED)));
    assert.equal(partText(parts[2] as MimePart), TEXT);
    assert.equal((parts[6] as MimePart).body.toString(), "original body");
  });

  it("does not take a longer boundary or a mid-line one for a delimiter", () => {
    const parts = walk(
      "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nline --b inside\n--bb not a delimiter\n--b--\n",
    );
    assert.equal(parts.length, 2);
    assert.equal((parts[1] as MimePart).body.toString(), "line --b inside\n--bb not a delimiter");
  });

  it("marks the parts cut by the byte cap and keeps a part whose closing delimiter never came", () => {
    const cap = MIXED.indexOf("original body") - MIXED.indexOf("\n\n") - 2 + 8;
    const parts = walk(MIXED, cap);
    assert.deepEqual(
      parts.map((p) => [p.path, p.truncated]),
      [
        ["", true],
        ["1", false],
        ["1.1", false],
        ["1.2", false],
        ["2", false],
        ["3", true],
        ["3.1", true],
      ],
    );
    assert.equal(partText(parts[6] as MimePart), "original");
  });

  it("treats the parts of a digest as messages, and a part without headers as text", () => {
    const digest = walk(
      "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in digest\n\nhi\n--d--\n",
    );
    assert.deepEqual(
      digest.map((p) => [p.path, p.contentType]),
      [
        ["", "multipart/digest"],
        ["1", "message/rfc822"],
        ["1.1", "text/plain"],
      ],
    );
    const headless = walk("Content-Type: multipart/mixed; boundary=b\n\n--b\nno headers here\n--b--\n");
    assert.equal(partText(headless[1] as MimePart), "no headers here");
  });

  it("stops walking at a depth bound instead of recursing without end", () => {
    let message = "leaf";
    for (let i = 0; i < 40; i++)
      message = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${message}\n--b${i}--\n`;
    const parts = walk(`Subject: deep\n${message}`);
    assert.equal(parts.length, 17);
    assert.equal(parts.at(-1)?.container, false);
    assert.equal(parts.at(-1)?.contentType, "multipart/mixed");
  });
});
