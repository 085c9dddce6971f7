import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import {
  cutHeaderBlock,
  cutKeptHead,
  listHeaderFields,
  rewrittenFieldLines,
  summarizeHeaders,
} from "./headers.js";

const TEXT = "迷惑メール 配信失敗のお知らせ";

// Message 1491116 of /work/shared/fixtures/real-qmail-queue.json, byte for byte: an ISO-2022-JP
// subject folded over two encoded words that split the character "ワ".
const FIXTURE_1491116 = Buffer.from(
  "UmVjZWl2ZWQ6IChxbWFpbCAxNjI0MSBpbnZva2VkIGJ5IHVpZCAwKTsgMjggTm92IDIwMjYgMDQ6MTE6MTIgLTAwMDAKRnJvbTogZ0BzcmMuZXhhbXBsZQpUbzogcjhAZ29vZC5leGFtcGxlClN1YmplY3Q6ID0/SVNPLTIwMjItSlA/Qj9HeVJDSlZFbE9TVT0/PQogPT9JU08tMjAyMi1KUD9CP2J5RThKVWs2UmtCZlJHb2tUaVFxUTA0a2FTUTdHeWhDPz0KCg==",
  "base64",
);

describe("cutHeaderBlock", () => {
  it("cuts at LF LF, CRLF CRLF and mixed empty lines, keeping the last header's line ending", () => {
    for (const [head, block] of [
      ["A: 1\nB: 2\n\nbody\n\nmore", "A: 1\nB: 2\n"],
      ["A: 1\r\nB: 2\r\n\r\nbody", "A: 1\r\nB: 2\r\n"],
      ["A: 1\r\nB: 2\n\r\nbody\n\n", "A: 1\r\nB: 2\n"],
      ["A: 1\nB: 2\r\n\nbody", "A: 1\nB: 2\r\n"],
    ] as const) {
      const cut = cutHeaderBlock(Buffer.from(head));
      assert.equal(cut.block.toString(), block, JSON.stringify(head));
      assert.equal(cut.complete, true);
    }
  });

  it("says incomplete when there is no empty line, and returns the whole head", () => {
    const cut = cutHeaderBlock(Buffer.from("A: 1\nB: 2\n"));
    assert.equal(cut.block.toString(), "A: 1\nB: 2\n");
    assert.equal(cut.complete, false);
  });

  it("gives an empty block for a message that starts with an empty line", () => {
    for (const head of ["\nbody", "\r\nbody"]) {
      const cut = cutHeaderBlock(Buffer.from(head));
      assert.equal(cut.block.length, 0);
      assert.equal(cut.complete, true);
    }
  });

  it("cuts the real fixture message at its blank line", () => {
    const cut = cutHeaderBlock(FIXTURE_1491116);
    assert.equal(cut.complete, true);
    assert.equal(cut.block.length, FIXTURE_1491116.length - 1);
  });
});

describe("cutKeptHead", () => {
  it("cuts a head that stops at its empty line as cutHeaderBlock cuts the whole message, on every short mix of lines", () => {
    // Every string of up to 7 of these bytes: all the ways an empty line can start, end, or
    // fall short of being one (a lone CR, CR CR LF, a last line without its LF).
    const alphabet = ["A", ":", "\n", "\r"];
    let strings = [""];
    const checked = { complete: 0, incomplete: 0 };
    for (let length = 0; length <= 7; length++) {
      for (const text of strings) {
        for (const message of [Buffer.from(text, "latin1"), Buffer.from(`${text}body\n\nmore`, "latin1")]) {
          const whole = cutHeaderBlock(message);
          const blank = message[whole.block.length] === 0x0d ? 2 : 1;
          // What the native reader keeps: up to the empty line's end, or all it read when there is none.
          const kept = whole.complete ? message.subarray(0, whole.block.length + blank) : message;
          assert.deepEqual(cutKeptHead(kept), whole, JSON.stringify(message.toString("latin1")));
          checked[whole.complete ? "complete" : "incomplete"]++;
        }
      }
      strings = strings.flatMap((text) => alphabet.map((c) => text + c));
    }
    // Both kinds came up many times: heads with an empty line, and heads without one.
    assert.ok(checked.complete > 20_000 && checked.incomplete > 1_000, JSON.stringify(checked));
  });
});

describe("summarizeHeaders", () => {
  it("decodes the real fixture's folded, split ISO-2022-JP subject and keeps the raw form unfolded", () => {
    const { headers, clientIp } = summarizeHeaders(cutHeaderBlock(FIXTURE_1491116).block);
    assert.equal(headers.subject, "パスワード再設定のお知らせ");
    assert.equal(
      headers.subjectRaw,
      "=?ISO-2022-JP?B?GyRCJVElOSU=?= =?ISO-2022-JP?B?byE8JUk6RkBfRGokTiQqQ04kaSQ7GyhC?=",
    );
    assert.equal(headers.from, "g@src.example");
    assert.equal(headers.to, "r8@good.example");
    assert.equal(headers.cc, "");
    assert.equal(headers.date, "");
    assert.equal(headers.messageId, "");
    assert.equal(clientIp, "");
  });

  it("reads CRLF, folded and oddly cased fields; missing ones are empty", () => {
    const block = Buffer.from(
      "FROM: =?UTF-8?B?5pyq5Yem55CG?= <a@src.example>\r\n" +
        "to: r1@good.example,\r\n\tr2@good.example\r\n" +
        "sUbJeCt: Monthly\r\n  report\r\n" +
        "Message-Id: <1@x>\r\n",
    );
    const { headers } = summarizeHeaders(block);
    assert.deepEqual(headers, {
      from: "未処理 <a@src.example>",
      to: "r1@good.example,\tr2@good.example",
      cc: "",
      subject: "Monthly  report",
      subjectRaw: "Monthly  report",
      date: "",
      messageId: "<1@x>",
    });
  });

  it("keeps the first of duplicated fields", () => {
    const { headers } = summarizeHeaders(Buffer.from("Subject: first\nTo: a@x\nSubject: second\nTo: b@x\n"));
    assert.equal(headers.subject, "first");
    assert.equal(headers.to, "a@x");
  });

  it("tolerates NUL bytes and raw 8-bit subjects in UTF-8, Shift_JIS, EUC-JP and ISO-2022-JP", () => {
    const jis = Buffer.from("GyRCJVElOSVvITwlSTpGQF9EaiROJCpDTiRpJDsbKEI=", "base64");
    for (const [bytes, expected] of [
      [Buffer.from(TEXT), TEXT],
      [iconv.encode(TEXT, "Shift_JIS"), TEXT],
      [iconv.encode(TEXT, "EUC-JP"), TEXT],
      [jis, "パスワード再設定のお知らせ"],
    ] as const) {
      const block = Buffer.concat([
        Buffer.from("From: a\0b@x\nSubject: "),
        bytes,
        Buffer.from("\nTo: r@x\n"),
      ]);
      const { headers } = summarizeHeaders(block);
      assert.equal(headers.subject, expected);
      assert.equal(headers.subjectRaw, expected);
      assert.equal(headers.from, "a\0b@x");
      assert.equal(headers.to, "r@x");
    }
  });

  it("reads the client address from qmail-smtpd's Received line below qmail-queue's", () => {
    const block = Buffer.from(
      "Received: (qmail 123 invoked from network); 28 Nov 2026 04:11:12 -0000\n" +
        "Received: from unknown (HELO foo) (203.0.113.5)\n  by mx1.example with SMTP; 28 Nov 2026 04:11:12 -0000\n" +
        "Subject: x\n",
    );
    assert.equal(summarizeHeaders(block).clientIp, "203.0.113.5");
  });

  it("walks the Received fields from the top past qmail's own lines and internal hops to the first public client; twin: none has one", () => {
    const hops = [
      "(qmail 9 invoked by uid 89); 28 Nov 2026",
      "from unknown (HELO filter) (127.0.0.1)\n  by mx1 with SMTP; 28 Nov 2026",
      "(qmail 8 invoked from network); 28 Nov 2026",
      "from unknown (HELO relay) (10.0.0.5)\n  by mx1 with SMTP; 28 Nov 2026",
      "from spam.example (spam.example [203.0.113.5]) by relay.internal (Postfix)",
      "from forged.example ([198.51.100.1]) by spam.example",
    ];
    const block = (values: string[]) =>
      Buffer.from(`${values.map((v) => `Received: ${v}\n`).join("")}Subject: x\n`);
    assert.equal(summarizeHeaders(block(hops)).clientIp, "203.0.113.5");
    assert.equal(summarizeHeaders(block(hops.slice(0, 4))).clientIp, "");
    assert.equal(summarizeHeaders(block([])).clientIp, "");
  });

  it("finds each field by the name listHeaderFields gives it, lower-cased; twin: names that only look alike are other fields", () => {
    // Blanks before the colon (NBSP too: trimEnd takes it), any case; then names that differ
    // by a character, a blank inside, a prefix or a suffix, each before the field it resembles.
    const named = Buffer.from(
      "Received: from a (10.0.0.1) by b\n" +
        "X-Subject: x-subject\nSub ject: spaced\nSubjects: plural\nSUBJECT \t\xa0: the subject\n" +
        "Fromm: fromm\nfrom\t: the from\nTo : the to\nCC: the cc\nDATE: the date\n" +
        "Message-ID : <id@x>\nMessage_ID: <no@x>\nReceived : from c (203.0.113.9) by d\n",
      "latin1",
    );
    const fields = listHeaderFields(named);
    const firstNamed = (name: string) => fields.find((f) => f.name.toLowerCase() === name)?.decoded ?? "";
    const { headers, clientIp } = summarizeHeaders(named);
    assert.deepEqual(headers, {
      from: "the from",
      to: "the to",
      cc: "the cc",
      subject: "the subject",
      subjectRaw: "the subject",
      date: "the date",
      messageId: "<id@x>",
    });
    for (const [key, name] of [
      ["from", "from"],
      ["to", "to"],
      ["cc", "cc"],
      ["subject", "subject"],
      ["date", "date"],
      ["messageId", "message-id"],
    ] as const) {
      assert.equal(headers[key], firstNamed(name), name);
    }
    // The first Received has only a private address; the one named "Received " is the next.
    assert.equal(clientIp, "203.0.113.9");
  });

  it("takes the client from a Received field whose from clause starts on a folded line; twin: fields without a from clause name none", () => {
    const below = "Received: from mx (HELO x) (203.0.113.8)\n  by y with SMTP\n";
    for (const [first, expected] of [
      ["Received:\r\n FROM a (HELO b) (203.0.113.7)\r\n  by c with SMTP\r\n", "203.0.113.7"],
      ["Received: from\n\tq (203.0.113.6) by d\n", "203.0.113.6"],
      ["Received: (qmail 1 invoked from network); 28 Nov 2026 04:11:12 -0000\n", "203.0.113.8"],
      ["Received: fromage (203.0.113.5) by e\n", "203.0.113.8"],
      ["Received: from\n", "203.0.113.8"],
    ]) {
      assert.equal(summarizeHeaders(Buffer.from(`${first}${below}Subject: x\n`)).clientIp, expected, first);
    }
  });

  it("reads a block that is not cut (no empty line) up to its end, and stops at an empty line", () => {
    assert.equal(summarizeHeaders(Buffer.from("Subject: no body")).headers.subject, "no body");
    assert.equal(summarizeHeaders(Buffer.from("To: a@x\n\nSubject: body line\n")).headers.subject, "");
  });
});

describe("listHeaderFields", () => {
  it("lists every field in order with its raw lines and its decoded, unfolded value", () => {
    const fields = listHeaderFields(cutHeaderBlock(FIXTURE_1491116).block);
    assert.deepEqual(
      fields.map((f) => f.name),
      ["Received", "From", "To", "Subject"],
    );
    assert.deepEqual(fields[3], {
      name: "Subject",
      raw: "Subject: =?ISO-2022-JP?B?GyRCJVElOSU=?=\n =?ISO-2022-JP?B?byE8JUk6RkBfRGokTiQqQ04kaSQ7GyhC?=",
      decoded: "パスワード再設定のお知らせ",
    });
  });

  it("keeps lines that are no field, with an empty name", () => {
    const fields = listHeaderFields(Buffer.from(" stray fold\nnot a field\r\nX-Y : z\n"));
    assert.deepEqual(fields, [
      { name: "", raw: " stray fold", decoded: "stray fold" },
      { name: "", raw: "not a field", decoded: "not a field" },
      { name: "X-Y", raw: "X-Y : z", decoded: "z" },
    ]);
  });
});

describe("rewrittenFieldLines", () => {
  // What it must equal: every field as listHeaderFields decodes it, "Name: value", kept when
  // that is not the field's physical line.
  const reference = (block: Buffer) =>
    listHeaderFields(block)
      .map((f) => ({ line: f.name === "" ? f.decoded : `${f.name}: ${f.decoded}`, raw: f.raw }))
      .filter((f) => f.line !== f.raw)
      .map((f) => f.line);

  it("leaves out plain one-line fields and keeps every field whose line reads otherwise", () => {
    const block = Buffer.from(
      [
        " stray fold first",
        "Subject: plain",
        "X-Tight:value",
        "X-Wide:  value",
        "X-Before : value",
        "X-Trailing: value ",
        "X-Tab:\tvalue",
        "X-Empty: ",
        "X-Bare:",
        "X-Folded: one",
        "\ttwo",
        "X-Encoded: =?UTF-8?B?44GC?= after",
        "X-Mid: a =?ISO-8859-1?Q?caf=E9?= b",
        "X-Not-Encoded: 100% =? sure",
        "no colon here",
        "X-CR: a\rb",
        "From: plain@example.com",
        "To: last@example.com",
      ].join("\n"),
    );
    const lines = rewrittenFieldLines(block);
    assert.deepEqual(lines, reference(block));
    assert.ok(!lines.some((l) => l.startsWith("Subject:") || l.startsWith("From:") || l.startsWith("To:")));
    for (const kept of ["X-Tight: value", "X-Wide: value", "X-Folded: one\ttwo", "X-Encoded: あ after"]) {
      assert.ok(lines.includes(kept), `${kept} in ${JSON.stringify(lines)}`);
    }
  });

  it("agrees with listHeaderFields on generated blocks (CRLF, folds, encoded words, spacing)", () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pieces = ["a", "b c", "=?UTF-8?Q?x_y?=", " ", "\t", "=?", "?=", ":", "z"];
    for (let i = 0; i < 500; i++) {
      const fields: string[] = [];
      for (let f = 0; f < 1 + rand(6); f++) {
        let value = "";
        for (let k = 0; k < rand(5); k++) value += pieces[rand(pieces.length)];
        const sep = [":", ": ", ":  ", " : ", ":\t"][rand(5)];
        const fold = rand(4) === 0 ? `\n ${pieces[rand(pieces.length)]}` : "";
        fields.push(`X-F${f}${sep}${value}${fold}`);
      }
      const eol = rand(2) === 0 ? "\n" : "\r\n";
      const block = Buffer.from(fields.join(eol) + (rand(2) === 0 ? eol : ""));
      assert.deepEqual(rewrittenFieldLines(block), reference(block), JSON.stringify(block.toString()));
    }
  });
});
