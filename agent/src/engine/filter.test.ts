import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import { compileFilter, type FilterCandidate, FilterError } from "./filter.js";
import { cutHeaderBlock, listHeaderFields, summarizeHeaders } from "./headers.js";
import type { Criterion, QueuedMessage, Recipient } from "./model.js";
import { compilePattern } from "./pattern.js";

const NOW = 1_795_900_000;

/** A candidate as the scan makes one: headers summarized from the real bytes, body read on demand. */
function candidate(
  raw: string | Buffer,
  envelope: Partial<QueuedMessage> = {},
): FilterCandidate & { bodyReads: number[] } {
  const bytes = typeof raw === "string" ? Buffer.from(raw) : raw;
  const cut = cutHeaderBlock(bytes);
  const summary = summarizeHeaders(cut.block);
  const bodyAt = cut.complete ? cut.block.length + (bytes[cut.block.length] === 0x0d ? 2 : 1) : bytes.length;
  const recipients: Recipient[] = [
    { channel: "remote", address: "r@good.example", stored: "r@good.example", done: false },
  ];
  const bodyReads: number[] = [];
  return {
    message: {
      id: "1491085",
      fingerprint: "f",
      state: "preprocessed",
      birthTime: NOW - 3600,
      size: bytes.length,
      sender: "a@src.example",
      recipients,
      headers: summary.headers,
      clientIp: summary.clientIp,
      bouncing: false,
      paths: { mess: "", info: "", local: "", remote: "", todo: "", intd: "", bounce: "" },
      ...envelope,
    },
    headBlock: cut.block,
    readBody: (max) => {
      bodyReads.push(max);
      return bytes.subarray(bodyAt, bodyAt + max);
    },
    bodyReads,
  };
}

const matches = (criteria: Criterion[], c: FilterCandidate, options = {}) =>
  compileFilter({ criteria }, NOW, options).matches(c);

// Subject of fixture message 1491116: ISO-2022-JP folded over two words split inside "ワ".
const SPLIT_SUBJECT =
  "Subject: =?ISO-2022-JP?B?GyRCJVElOSU=?=\n =?ISO-2022-JP?B?byE8JUk6RkBfRGokTiQqQ04kaSQ7GyhC?=\n";
const JAPANESE = candidate(`From: g@src.example\nTo: r8@good.example\n${SPLIT_SUBJECT}\nbody\n`);
const PLAIN = candidate(
  "From: MAILER-DAEMON@mx1.example\nTo: support@abcde.net\nSubject: failure notice\n\nHi.\n",
);

describe("compileFilter: combining", () => {
  it("selects nothing with no criteria, and everything with `all`", () => {
    assert.equal(compileFilter({ criteria: [] }, NOW).matches(PLAIN), false);
    assert.equal(matches([{ kind: "all" }], PLAIN), true);
    assert.equal(matches([{ kind: "all", negate: true }], PLAIN), false);
  });

  it("ANDs criteria and applies negation to each", () => {
    const subject: Criterion = { kind: "subjectContains", text: "failure" };
    const sender: Criterion = { kind: "senderExact", sender: "a@src.example" };
    assert.equal(matches([subject, sender], PLAIN), true);
    assert.equal(matches([subject, { ...sender, negate: true }], PLAIN), false);
    assert.equal(matches([subject, { kind: "senderExact", sender: "b@src.example" }], PLAIN), false);
    assert.equal(
      matches([subject, { kind: "senderExact", sender: "b@src.example", negate: true }], PLAIN),
      true,
    );
  });

  it("does not read the body when a cheaper criterion already said no", () => {
    const c = candidate("Subject: x\n\nspam body\n");
    const body: Criterion = { kind: "bodyRegex", pattern: { source: "spam", caseInsensitive: false } };
    assert.equal(matches([body, { kind: "sizeBytes", range: { min: 1_000_000 } }], c), false);
    assert.deepEqual(c.bodyReads, []);
    assert.equal(matches([body, { kind: "sizeBytes", range: { max: 1_000_000 } }], c), true);
    assert.equal(c.bodyReads.length, 1);
  });

  it("says what it needs", () => {
    const f = compileFilter({ criteria: [{ kind: "subjectContains", text: "x" }] }, NOW);
    assert.deepEqual([f.needsHeaders, f.needsBody], [true, false]);
    const g = compileFilter(
      { criteria: [{ kind: "bodyRegex", pattern: { source: "x", caseInsensitive: true } }] },
      NOW,
    );
    assert.deepEqual([g.needsHeaders, g.needsBody], [false, true]);
  });
});

describe("compileFilter: qmHandle's criteria", () => {
  it("-d: any of the ids, leading zeros ignored", () => {
    assert.equal(matches([{ kind: "ids", ids: ["7", "01491085"] }], PLAIN), true);
    assert.equal(matches([{ kind: "ids", ids: ["7", "8"] }], PLAIN), false);
  });

  it("-f: the exact sender, domain case-insensitive, local part exact; <> and #@[]", () => {
    assert.equal(matches([{ kind: "senderExact", sender: "a@SRC.example" }], PLAIN), true);
    assert.equal(matches([{ kind: "senderExact", sender: "A@src.example" }], PLAIN), false);
    assert.equal(matches([{ kind: "senderExact", sender: "a@src.example.jp" }], PLAIN), false);
    const bounce = candidate("Subject: failure notice\n\n", { sender: "" });
    assert.equal(matches([{ kind: "senderExact", sender: "" }], bounce), true);
    assert.equal(matches([{ kind: "senderExact", sender: "" }], PLAIN), false);
    const doubleBounce = candidate("Subject: failure notice\n\n", { sender: "#@[]" });
    assert.equal(matches([{ kind: "senderExact", sender: "#@[]" }], doubleBounce), true);
  });

  it("-F: a sender regex", () => {
    assert.equal(
      matches(
        [{ kind: "senderRegex", pattern: { source: "@src\\.example$", caseInsensitive: false } }],
        PLAIN,
      ),
      true,
    );
    assert.equal(
      matches([{ kind: "senderRegex", pattern: { source: "^b@", caseInsensitive: false } }], PLAIN),
      false,
    );
  });

  it("-S: a literal, case-insensitive substring of the decoded or the raw subject", () => {
    assert.equal(matches([{ kind: "subjectContains", text: "再設定" }], JAPANESE), true);
    assert.equal(matches([{ kind: "subjectContains", text: "パスワード再設定のお知らせ" }], JAPANESE), true);
    assert.equal(matches([{ kind: "subjectContains", text: "GyRCJVElOSU=" }], JAPANESE), true);
    assert.equal(matches([{ kind: "subjectContains", text: "Failure Notice" }], PLAIN), true);
    assert.equal(matches([{ kind: "subjectContains", text: "配信失敗" }], JAPANESE), false);
    // Metacharacters are literal: "." is a dot, not any character.
    assert.equal(matches([{ kind: "subjectContains", text: "failure.notice" }], PLAIN), false);
    const dotted = candidate("Subject: [SPAM] failure.notice (1)\n\n");
    assert.equal(matches([{ kind: "subjectContains", text: "[spam] failure.notice (1)" }], dotted), true);
  });

  it("-h / -H: raw header lines and decoded fields, case-insensitive or not", () => {
    const h = (source: string, caseInsensitive: boolean): Criterion => ({
      kind: "headerRegex",
      pattern: { source, caseInsensitive },
    });
    assert.equal(matches([h("abcde\\.net", true)], PLAIN), true);
    assert.equal(matches([h("^to: support@ABCDE", true)], PLAIN), true);
    assert.equal(matches([h("^to: support@ABCDE", false)], PLAIN), false);
    assert.equal(matches([h("^To: support@abcde", false)], PLAIN), true);
    // The decoded subject, as "Subject: value", and a raw physical line of the folded field.
    assert.equal(matches([h("^Subject: パスワード再設定", false)], JAPANESE), true);
    assert.equal(matches([h("^ =\\?ISO-2022-JP\\?B\\?byE8", false)], JAPANESE), true);
    assert.equal(matches([h("^X-Mailer:", true)], JAPANESE), false);
  });

  it("-h / -H: the raw-bytes shortcut gives the verdict of testing every line, case by case", () => {
    // The reference: every physical line and every decoded "Name: value" line, one test each
    // (what the filter did before it searched the raw bytes first).
    const reference = (block: Buffer, source: string, caseInsensitive: boolean): boolean => {
      const p = compilePattern({ source, caseInsensitive });
      return listHeaderFields(block).some(
        (f) =>
          f.raw.split(/\r?\n/).some((line) => p.test(line)) ||
          p.test(f.name === "" ? f.decoded : `${f.name}: ${f.decoded}`),
      );
    };
    const blocks = [
      "From: MAILER-DAEMON@mx1.example\nTo: support@abcde.net\nSubject: failure notice\n",
      "Subject:failure notice\nTo:   support@abcde.net  \n",
      "Received: from a (1.2.3.4)\n  by mx with SMTP; 1 Jan\nSubject: failure\n notice\n",
      "Subject: failure notice\r\nTo: x@y\r\n",
      "Subject: =?UTF-8?B?5aSx5pWX?=\nFrom: =?ISO-2022-JP?B?GyRCRSk5fBsoQg==?= <a@b>\n",
      SPLIT_SUBJECT,
      " stray fold first\nno colon here\nA: 1\n",
      "",
      "Subject: caf\xe9\n",
    ].map((text) => Buffer.from(text, "latin1"));
    const patterns = [
      "^Subject: failure notice$",
      "failure notice",
      "^To: support@abcde\\.net$",
      "notice$",
      "^$",
      "a?",
      "e\\s+n",
      "[^x]+",
      "\\Afailure",
      "(?i)SUBJECT",
      "失敗",
      "^Subject: パスワード再設定",
      "^ =\\?ISO-2022-JP",
      "\\z",
      "r\\nT",
    ];
    for (const block of blocks) {
      for (const source of patterns) {
        for (const caseInsensitive of [false, true]) {
          const c = { ...PLAIN, headBlock: block };
          const criteria: Criterion[] = [{ kind: "headerRegex", pattern: { source, caseInsensitive } }];
          const want = reference(block, source, caseInsensitive);
          const label = `${JSON.stringify(block.toString("latin1"))} ${source} ${caseInsensitive}`;
          assert.equal(matches(criteria, c), want, label);
          assert.equal(compileFilter({ criteria }, NOW).matchesHead(block), want, label);
        }
      }
    }
  });

  it("matchesHead answers for the header-block criteria alone, and true when there are none", () => {
    const f = compileFilter(
      {
        criteria: [
          { kind: "headerRegex", pattern: { source: "^Subject: failure", caseInsensitive: false } },
          { kind: "toCcContains", text: "support@" },
          { kind: "senderExact", sender: "nobody@else.example" },
        ],
      },
      NOW,
    );
    // The envelope criterion fails: the full verdict is false, the head test passes.
    assert.equal(f.matchesHead(PLAIN.headBlock), true);
    assert.equal(f.matches(PLAIN), false);
    assert.equal(f.matchesHead(JAPANESE.headBlock), false);
    const envelopeOnly = compileFilter({ criteria: [{ kind: "senderExact", sender: "a@src.example" }] }, NOW);
    assert.equal(envelopeOnly.matchesHead(JAPANESE.headBlock), true);
    assert.equal(envelopeOnly.matches(JAPANESE), true);
    const negated = compileFilter(
      {
        criteria: [
          { kind: "headerRegex", pattern: { source: "failure", caseInsensitive: false }, negate: true },
        ],
      },
      NOW,
    );
    assert.equal(negated.matchesHead(PLAIN.headBlock), false);
    assert.equal(negated.matchesHead(JAPANESE.headBlock), true);
  });

  it("matchesPastHead decides the other criteria alone, and an empty filter still selects nothing", () => {
    const headAndSender = (sender: string) =>
      compileFilter(
        {
          criteria: [
            { kind: "headerRegex", pattern: { source: "^X-Never-There:", caseInsensitive: false } },
            { kind: "senderExact", sender },
          ],
        },
        NOW,
      );
    // The head criterion would fail, but it is not asked again: only the sender decides.
    assert.equal(headAndSender(JAPANESE.message.sender).matchesPastHead(JAPANESE), true);
    assert.equal(headAndSender("nobody@else.example").matchesPastHead(JAPANESE), false);
    const headOnlyFilter = compileFilter(
      { criteria: [{ kind: "headerRegex", pattern: { source: "^X-Never-There:", caseInsensitive: false } }] },
      NOW,
    );
    assert.equal(headOnlyFilter.matchesPastHead(JAPANESE), true);
    assert.equal(compileFilter({ criteria: [] }, NOW).matchesPastHead(JAPANESE), false);
  });

  it("-b / -B: lines of the decoded body text, within the byte cap", () => {
    const raw = Buffer.concat([
      Buffer.from(
        "Subject: x\nContent-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: base64\n\n",
      ),
      Buffer.from(
        iconv
          .encode("ご注文ありがとうございます\n当選しました http://bad.example/win\n", "Shift_JIS")
          .toString("base64"),
      ),
      Buffer.from("\n"),
    ]);
    const c = candidate(raw);
    const b = (source: string, caseInsensitive: boolean): Criterion => ({
      kind: "bodyRegex",
      pattern: { source, caseInsensitive },
    });
    assert.equal(matches([b("^当選しました", false)], c), true);
    assert.equal(matches([b("BAD\\.EXAMPLE", true)], c), true);
    assert.equal(matches([b("BAD\\.EXAMPLE", false)], c), false);
    // Each line on its own: nothing spans the line break.
    assert.equal(matches([b("ございます.当選", false)], c), false);
    // A cap of 8 bytes of base64 holds only the first characters.
    assert.equal(matches([b("当選", false)], candidate(raw), { bodyCapBytes: 8 }), false);
    assert.equal(matches([b("^ご", false)], candidate(raw), { bodyCapBytes: 8 }), true);
  });

  it("-x / -X: To, Cc and Bcc fields, every one of them", () => {
    const c = candidate(
      "To: a@x.example\nCc: =?UTF-8?B?5pyq5Yem55CG?= <Victim@ABCDE.net>\nBcc: hidden@y.example\nTo: second@z.example\n\n",
    );
    assert.equal(matches([{ kind: "toCcContains", text: "victim@abcde.net" }], c), true);
    assert.equal(matches([{ kind: "toCcContains", text: "hidden@y" }], c), true);
    assert.equal(matches([{ kind: "toCcContains", text: "second@z.example" }], c), true);
    assert.equal(matches([{ kind: "toCcContains", text: "r@good.example" }], c), false);
    assert.equal(
      matches([{ kind: "toCcRegex", pattern: { source: "^未処理 <", caseInsensitive: false } }], c),
      true,
    );
    assert.equal(
      matches([{ kind: "toCcRegex", pattern: { source: "^a@x", caseInsensitive: false } }], c),
      true,
    );
    assert.equal(
      matches([{ kind: "toCcRegex", pattern: { source: "^To:", caseInsensitive: false } }], c),
      false,
    );
    // From is not To/Cc/Bcc.
    assert.equal(matches([{ kind: "toCcContains", text: "mailer-daemon" }], PLAIN), false);
  });
});

describe("compileFilter: envelope criteria", () => {
  const rcpts: Recipient[] = [
    { channel: "local", address: "user@vdom.example", stored: "vp-user@vdom.example", done: true },
    { channel: "remote", address: "x@Other.Example", stored: "x@Other.Example", done: false },
  ];
  const c = candidate("Subject: x\n\n", {
    recipients: rcpts,
    birthTime: NOW - 7200,
    size: 5000,
    state: "bouncing",
  });

  it("recipient regex: the written or the stored address of any recipient", () => {
    const r = (source: string): Criterion => ({
      kind: "recipientRegex",
      pattern: { source, caseInsensitive: false },
    });
    assert.equal(matches([r("^user@vdom")], c), true);
    assert.equal(matches([r("^vp-user@")], c), true);
    assert.equal(matches([r("^nobody@")], c), false);
  });

  it("recipient domain: exact and case-insensitive, on the unprefixed address", () => {
    assert.equal(matches([{ kind: "recipientDomain", domain: "other.example" }], c), true);
    assert.equal(matches([{ kind: "recipientDomain", domain: "@VDOM.example" }], c), true);
    assert.equal(matches([{ kind: "recipientDomain", domain: "example" }], c), false);
    assert.equal(matches([{ kind: "recipientDomain", domain: "sub.other.example" }], c), false);
  });

  it("age and size: closed ranges", () => {
    assert.equal(matches([{ kind: "ageSeconds", range: { min: 7200 } }], c), true);
    assert.equal(matches([{ kind: "ageSeconds", range: { min: 7201 } }], c), false);
    assert.equal(matches([{ kind: "ageSeconds", range: { max: 3600 } }], c), false);
    assert.equal(matches([{ kind: "sizeBytes", range: { min: 5000, max: 5000 } }], c), true);
    assert.equal(matches([{ kind: "sizeBytes", range: { max: 4999 } }], c), false);
  });

  it("channel: any recipient on it; state: exactly", () => {
    assert.equal(matches([{ kind: "channel", channel: "local" }], c), true);
    assert.equal(matches([{ kind: "channel", channel: "local" }], PLAIN), false);
    assert.equal(matches([{ kind: "state", state: "bouncing" }], c), true);
    assert.equal(matches([{ kind: "state", state: "preprocessed" }], c), false);
  });
});

describe("compileFilter: refusals", () => {
  const refuses = (criterion: Criterion, message: RegExp) =>
    assert.throws(
      () => compileFilter({ criteria: [{ kind: "all" }, criterion] }, NOW),
      (err: unknown) => {
        assert.ok(err instanceof FilterError);
        assert.match(err.message, message);
        return true;
      },
    );

  it("names the criterion and the problem", () => {
    refuses(
      { kind: "headerRegex", pattern: { source: "(abc", caseInsensitive: true } },
      /^invalid filter, criterion 2: header regex \(-h\/-H\): invalid pattern "\(abc": missing \)/,
    );
    refuses(
      { kind: "subjectContains", text: "" },
      /criterion 2: subject \(-S\): empty text would match every message/,
    );
    refuses({ kind: "ids", ids: ["12x"] }, /"12x" is not a message id/);
    refuses({ kind: "ids", ids: [] }, /no id given/);
    refuses({ kind: "sizeBytes", range: { min: 10, max: 5 } }, /minimum 10 is above maximum 5/);
    refuses({ kind: "ageSeconds", range: {} }, /give a minimum, a maximum or both/);
    refuses({ kind: "ageSeconds", range: { min: -1 } }, /bound -1 is not a whole number/);
    refuses({ kind: "channel", channel: "smtp" as "local" }, /"smtp" is not local or remote/);
  });

  it("accepts the same criteria when they are well formed", () => {
    const ok: Criterion[] = [
      { kind: "headerRegex", pattern: { source: "(abc)", caseInsensitive: true } },
      { kind: "subjectContains", text: "a" },
      { kind: "ids", ids: ["12"] },
      { kind: "sizeBytes", range: { min: 5, max: 10 } },
      { kind: "ageSeconds", range: { min: 0 } },
      { kind: "channel", channel: "remote" },
    ];
    for (const criterion of ok) assert.doesNotThrow(() => compileFilter({ criteria: [criterion] }, NOW));
  });
});
