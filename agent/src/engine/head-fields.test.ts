// The fields of a header block as the native reader finds them (agent/native/head_fields.c)
// against headers.ts's findHeadFields, on every kind of block a queue holds, and summarizeHeaders
// taking them.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { FileBatch } from "./batch-read.js";
import { eachReader } from "./batch-readers.test-support.js";
import { cutKeptHead, findHeadFields, HEAD_FIELD_INTS, summarizeHeaders } from "./headers.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-head-fields-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let roots = 0;
/** A new directory holding one file per block, named 0, 1, ... */
function rootWith(blocks: Buffer[]): { root: string; paths: string[] } {
  const root = path.join(tmp, `r${roots++}`);
  fs.mkdirSync(root);
  const paths = blocks.map((block, i) => {
    fs.writeFileSync(path.join(root, String(i)), block);
    return String(i);
  });
  return { root, paths };
}

/** n Received fields, newest first, of internal hops but the last (the client, 198.51.100.n). */
const received = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const ip = i === n - 1 ? `198.51.100.${n}` : `10.0.0.${i + 1}`;
    return `Received: from h${i} (HELO h${i}) (${ip})\n  by mx${i}\n`;
  }).join("");

/** Blocks of every kind the walk of a real queue meets, each with its empty line and a body. */
const CASES: Record<string, string | Buffer> = {
  lf: "From: a@x\nTo: b@x\nSubject: hi\n\nbody\n",
  crlf: "From: a@x\r\nTo: b@x\r\nSubject: hi\r\n\r\nbody\r\n",
  mixed: "From: a@x\r\nTo: b@x\nSubject: hi\r\n\nbody\n",
  folded: "Subject: one\n two\n\tthree\nTo: b@x,\r\n  c@x\n\nbody\n",
  foldFirst: " stray fold\nSubject: after it\n\nbody\n",
  noColon: "no colon here\nSubject: s\nalso none\n\tfolded onto it: with a colon\n\nbody\n",
  oddNames:
    "SUBJECT : spaced\nsubject\t: tabbed\nfRoM\xa0: nbsp\nMessage-Id: <1@x>\nmessage-ID: <2@x>\nDaTe:d\n\nx\n",
  notQuiteNames: "Subjects: no\nXSubject: no\nSubjec: no\nReceived-SPF: pass\nCc : c@x\n\nx\n",
  colonInFold: "X-Long: value\n Subject: not a field\nSubject: real\n\nx\n",
  duplicates: "Subject: first\nTo: a@x\nSubject: second\nTo: b@x\nCc: c1\nCc: c2\n\nx\n",
  manyReceived: `${received(12)}Subject: deep\n\nx\n`,
  eightReceived: `${received(8)}Subject: eight\n\nx\n`,
  nineReceived: `${received(9)}Subject: nine\n\nx\n`,
  emptyBlock: "\nbody only\n",
  emptyBlockCrLf: "\r\nbody only\r\n",
  noEmptyLine: "Subject: no body\nTo: b@x",
  crOnlyLine: "Subject: a\n\r\r\nTo: b@x\n\nx\n",
  empty: "",
  iso2022jp: Buffer.concat([
    Buffer.from("Subject: "),
    Buffer.from("GyRCJVElOSVvITwlSTpGQF9EaiROJCpDTiRpJDsbKEI=", "base64"),
    Buffer.from("\nTo: r@x\n\nx\n"),
  ]),
  eightBit: Buffer.from([
    ...Buffer.from("Subject: "),
    0x83,
    0x65,
    0x83,
    0x58,
    ...Buffer.from("\nFrom: a\0b\n\nx\n"),
  ]),
  eightBitName: Buffer.from([...Buffer.from("Subj"), 0xe9, ...Buffer.from("ct: x\nSubject: y\n\nx\n")]),
};

/** Random blocks made of the lines that matter: names in any case, blanks, folds, CR, 8-bit, ESC. */
function randomBlocks(count: number, seed: number): Buffer[] {
  let x = seed;
  const next = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const pick = (items: string[]) => items[next(items.length)] as string;
  const names = ["From", "to", "CC", "Subject", "date", "Message-ID", "Received", "X-Other", "Subjec", ""];
  const pieces = [
    " ",
    "\t",
    "\xa0",
    ":",
    "=?UTF-8?B?44GC?=",
    "a@x",
    "from h (1.2.3.4)",
    "\x1b$B",
    "\x85",
    "\0",
  ];
  const blocks: Buffer[] = [];
  for (let b = 0; b < count; b++) {
    const lines: string[] = [];
    for (let l = next(16); l > 0; l--) {
      const fold = next(5) === 0;
      let line = fold ? pick([" ", "\t"]) : pick(names);
      if (!fold && next(4) !== 0) line += `${pick([" ", "\t", "\xa0", ""])}:`;
      for (let p = next(5); p > 0; p--) line += pick(pieces);
      lines.push(line + pick(["\n", "\r\n"]));
    }
    blocks.push(Buffer.from(`${lines.join("")}${next(3) === 0 ? "" : "\n"}body\n`, "latin1"));
  }
  return blocks;
}

/** The header block of file i as the walk cuts what the reader kept, and its fields as a copy. */
function blockAndFields(batch: FileBatch, i: number): { block: Buffer; fields: Int32Array } {
  const file = batch.file(i);
  assert.ok(file, `file ${i} read`);
  assert.ok(batch.fields, "fields given");
  return {
    block: cutKeptHead(file.data).block,
    fields: batch.fields.slice(i * HEAD_FIELD_INTS, (i + 1) * HEAD_FIELD_INTS),
  };
}

describe("head fields: the native reader's against findHeadFields", () => {
  const blocks = [
    ...Object.values(CASES).map((c) => Buffer.from(c as string, "latin1")),
    ...randomBlocks(400, 7),
  ];
  const names = [
    ...Object.keys(CASES),
    ...blocks.slice(Object.keys(CASES).length).map((_, i) => `random ${i}`),
  ];

  test("the same numbers for every block, read whole and cut short by the limit", async () => {
    const { root, paths } = rootWith(blocks);
    for (const limit of [16384, 40]) {
      for (const [reader, batch] of await eachReader(root, { paths, limit, headOnly: true, fields: true })) {
        paths.forEach((_, i) => {
          const { block, fields } = blockAndFields(batch, i);
          assert.deepEqual(fields, findHeadFields(block).slice(), `${reader}, limit ${limit}: ${names[i]}`);
        });
      }
    }
  });

  test("summarizeHeaders gives the same summary from them as when it finds the fields itself", async () => {
    const { root, paths } = rootWith(blocks);
    const [, batch] = (await eachReader(root, { paths, limit: 16384, headOnly: true, fields: true }))[0] as [
      string,
      FileBatch,
    ];
    const summaries = new Map<string, ReturnType<typeof summarizeHeaders>>();
    paths.forEach((_, i) => {
      const { block } = blockAndFields(batch, i);
      const summary = summarizeHeaders(block);
      assert.deepEqual(summarizeHeaders(block, batch.fields, i * HEAD_FIELD_INTS), summary, names[i]);
      summaries.set(names[i] as string, summary);
    });
    // The Received cases are what they say: the client found in the last field, the eighth
    // from the reader's numbers, the ninth and twelfth past them.
    for (const [name, n] of [
      ["eightReceived", 8],
      ["nineReceived", 9],
      ["manyReceived", 12],
    ] as const)
      assert.equal(summaries.get(name)?.clientIp, `198.51.100.${n}`, name);
  });

  test("no fields unless asked for with headOnly; twin: asked for", async () => {
    const { root, paths } = rootWith([Buffer.from(CASES.lf as string)]);
    for (const req of [
      { paths, limit: 4096, headOnly: true },
      { paths, limit: 4096, fields: true },
    ]) {
      for (const [reader, batch] of await eachReader(root, req))
        assert.equal(batch.fields, undefined, reader);
    }
    for (const [reader, batch] of await eachReader(root, {
      paths,
      limit: 4096,
      headOnly: true,
      fields: true,
    }))
      assert.equal(batch.fields?.length, HEAD_FIELD_INTS, reader);
  });
});

describe("summarizeHeaders with the reader's fields", () => {
  const block = Buffer.from(
    "To: to@x\nSubject: the subject\nReceived: from h (HELO h) (203.0.113.9)\n  by mx\n",
  );

  test("reads the fields where they say, not where it would find them", () => {
    const fields = findHeadFields(block).slice();
    const found = summarizeHeaders(block, fields);
    assert.equal(found.headers.subject, "the subject");
    assert.equal(found.clientIp, "203.0.113.9");
    // Subject's place given as To's: the summary follows the numbers it was given.
    fields.copyWithin(7, 3, 5);
    const told = summarizeHeaders(block, fields);
    assert.equal(told.headers.subject, "to@x");
    assert.equal(told.headers.to, "to@x");
  });

  test("finds them itself when the block has more Received fields than they hold; twin: as many as they hold", () => {
    const fields = findHeadFields(block).slice();
    fields.copyWithin(7, 3, 5);
    fields[13] = 9;
    assert.equal(summarizeHeaders(block, fields).headers.subject, "the subject");
    fields[13] = 8;
    assert.equal(summarizeHeaders(block, fields).headers.subject, "to@x");
  });

  test("reads the numbers of the block at `at` in a batch's array", () => {
    const one = findHeadFields(block).slice();
    const batch = new Int32Array(3 * HEAD_FIELD_INTS).fill(-7);
    batch.set(one, 2 * HEAD_FIELD_INTS);
    assert.deepEqual(summarizeHeaders(block, batch, 2 * HEAD_FIELD_INTS), summarizeHeaders(block));
  });
});
