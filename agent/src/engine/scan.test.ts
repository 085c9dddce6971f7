import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { QueueBuilder, rebuildRealQueue } from "@qmfleet/test";
import { compileFilter } from "./filter.js";
import { fingerprintFile } from "./fingerprint.js";
import { detectLayout, messagePaths } from "./layout.js";
import type { QueuedMessage, QueueLayout } from "./model.js";
import { native } from "./native.js";
import {
  type ScanCandidate,
  type ScanOptions,
  type ScanSelection,
  scanQueue,
  scanQueueSync,
} from "./scan.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-scan-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => path.join(tmp, `q${n++}`, "queue");

function scanAll(root: string, opts = {}): ScanCandidate[] {
  return [...scanQueueSync(detectLayout(root), opts)];
}
/** The split dir (of 3) of an id, plain or not. */
function splitDirOf(id: string): number {
  return Number(BigInt(id) % 3n);
}
function byId(list: ScanCandidate[]): Map<string, QueuedMessage> {
  return new Map(list.map((c) => [c.message.id, c.message]));
}
/** This process's read(2) calls ("syscr") or bytes ("rchar") so far (Linux's /proc/self/io). */
const ioCounter = (name: "syscr" | "rchar") =>
  Number(new RegExp(`${name}: (\\d+)`).exec(fs.readFileSync("/proc/self/io", "utf8"))?.[1]);
/**
 * fn run with the plain read calls only: what io_uring reads escapes /proc/self/io. The tests
 * that count reads prove which files and bytes the walk asks for, the same either way
 * (batch-read.test.ts holds the two ways of reading to giving the same).
 */
function withPlainReads<T>(fn: () => T): T {
  const was = native.useIoUring(false);
  try {
    return fn();
  } finally {
    native.useIoUring(was);
  }
}
/**
 * A synchronous scan and the read system calls it made: the fewer of two runs, since anything
 * else in the process (code loaded on first use) can only add reads.
 */
function scanCountingReads(
  layout: QueueLayout,
  opts: ScanOptions,
): { found: ScanCandidate[]; reads: number } {
  const run = () =>
    withPlainReads(() => {
      const before = ioCounter("syscr");
      const found = [...scanQueueSync(layout, opts)];
      return { found, reads: ioCounter("syscr") - before };
    });
  const first = run();
  const second = run();
  return second.reads < first.reads ? second : first;
}
/**
 * The envelope files a scan can spare for these messages: info and each channel file of a
 * preprocessed or bouncing message. A queued message's todo file is read either way (it says
 * the message is queued); one being written has none.
 */
function envelopeFiles(list: ScanCandidate[]): number {
  return list.reduce((sum, { message: m }) => {
    if (m.state === "todo" || m.state === "being-written") return sum;
    return sum + 1 + new Set(m.recipients.map((r) => r.channel)).size;
  }, 0);
}

describe("scan: fingerprints", () => {
  test("a scan's fingerprint is what the purge's re-check computes from the file, whatever the head, hashed in the reader or here", async () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 3 });
    const longField = (n: number) => `X-Long: ${"y".repeat(n)}\n`;
    const heads = {
      lf: "Subject: a\nFrom: b\n\nbody\n",
      crlf: "Subject: a\r\nFrom: b\r\n\r\nbody\r\n",
      mixed: "Subject: a\nFrom: b\n\r\nbody\n",
      emptyHead: "\nbody only\n",
      emptyHeadCrlf: "\r\nbody only\r\n",
      noBlankShort: "Subject: a\nFrom: b\n",
      noBlankHuge: `${longField(100_000)}Subject: a\n`,
      headPastFirstRead: `${longField(20_000)}Subject: a\n\nbody\n`,
      headPastSpan: `${longField(70_000)}Subject: a\n\nbody\n`,
      empty: "",
    };
    const ids = new Map(Object.entries(heads).map(([name, message]) => [q.add({ message }).id, name]));
    q.close();
    const layout = detectLayout(root);
    // A search (a head test) hashes the heads it keeps here, a full scan in the reader where
    // it can: both, and with the reader's digests turned off.
    const select: ScanSelection = {
      filter: {
        criteria: [
          {
            kind: "headerRegex",
            pattern: { source: "^No-Such-Field:", caseInsensitive: false },
            negate: true,
          },
        ],
      },
      now: 0,
    };
    for (const digests of [true, false]) {
      const was = native.useDigests(digests);
      try {
        const pipelined: ScanCandidate[] = [];
        for await (const c of scanQueue(layout)) pipelined.push(c);
        for (const scan of [scanAll(root), pipelined, scanAll(root, { select })]) {
          assert.equal(scan.length, ids.size);
          for (const c of scan) {
            const name = ids.get(c.message.id);
            const fromFile = fingerprintFile(path.join(root, c.message.paths.mess));
            assert.equal(c.message.fingerprint, fromFile?.fingerprint, `${name}, native digests ${digests}`);
          }
        }
      } finally {
        native.useDigests(was);
      }
    }
    const all = new Set(scanAll(root).map((c) => c.message.fingerprint));
    assert.equal(all.size, ids.size, "no two of these heads share a fingerprint");
  });
});

describe("scan: the real qmail queue", () => {
  test("every message's state, sender, recipients, subject and size are right", async () => {
    const fx = rebuildRealQueue(freshRoot());
    const list: ScanCandidate[] = [];
    for await (const c of scanQueue(detectLayout(fx.root))) list.push(c);
    assert.equal(list.length, 14);
    const m = (orig: string) => {
      const id = fx.byOriginalId.get(orig)?.id;
      const found = list.find((c) => c.message.id === id)?.message;
      assert.ok(found, `message ${orig} scanned`);
      return found;
    };
    const plain = m("1491085");
    assert.equal(plain.state, "preprocessed");
    assert.equal(plain.sender, "a@src.example");
    assert.equal(plain.size, 245);
    assert.equal(plain.birthTime, 1795839072);
    assert.equal(plain.headers.subject, "Monthly report");
    assert.equal(plain.headers.from, "Alice <a@src.example>");
    assert.deepEqual(plain.recipients, [
      { channel: "remote", address: "r1@good.example", stored: "r1@good.example", done: false },
    ]);
    assert.equal(m("1491086").headers.subject, "パスワード再設定のお知らせ");
    assert.equal(
      m("1491086").headers.subjectRaw,
      "=?ISO-2022-JP?B?GyRCJVElOSVvITwlSTpGQF9EaiROJCpDTiRpJDsbKEI=?=",
    );
    assert.equal(m("1491116").headers.subject, "パスワード再設定のお知らせ", "split mid-character");
    const multi = m("1491089");
    assert.deepEqual(
      multi.recipients.map((r) => `${r.channel}:${r.address}:${r.done}`),
      ["local:defer@mx1.example.test:false", "remote:r3@good.example:false", "remote:r4@other.example:false"],
    );
    const bouncing = m("1491092");
    assert.equal(bouncing.state, "bouncing");
    assert.equal(bouncing.bouncing, true);
    assert.equal(m("1491098").sender, "");
    assert.equal(m("1491100").sender, "#@[]");
    assert.equal(m("1491103").headers.subject, "CRLF message");
    assert.equal(m("1491103").headers.to, "r6@good.example");
    const vp = m("1491109").recipients[0];
    assert.deepEqual(vp, {
      channel: "local",
      address: "user@vdom.example",
      stored: "vp-user@vdom.example",
      done: false,
    });
    assert.equal(m("1491119").size, 222225);
    assert.deepEqual(
      m("1491122").recipients.map((r) => `${r.channel}:${r.address}:${r.done}`),
      [
        "local:ok@mx1.example.test:true",
        "local:defer@mx1.example.test:false",
        "remote:r10@good.example:false",
      ],
    );
    const todo = m("1491127");
    assert.equal(todo.state, "todo");
    assert.equal(todo.sender, "t1@src.example");
    assert.equal(todo.birthTime, 1795839089);
    assert.deepEqual(
      todo.recipients.map((r) => r.address),
      ["r11@good.example"],
    );
    assert.equal(m("1491129").headers.subject, "未処理");
    // Preprocessed first (info/ order), then todo/.
    assert.deepEqual(
      list.slice(-2).map((c) => c.message.state),
      ["todo", "todo"],
    );
    for (const c of list) {
      assert.match(c.message.fingerprint, /^\d+:[0-9a-f]{32}$/);
      assert.equal(c.message.paths.mess, fx.messages.find((x) => x.id === c.message.id)?.built.paths.mess);
    }
    fx.builder.close();
  });

  test("ids subset returns just those, in order, skipping ids not in the queue", () => {
    const fx = rebuildRealQueue(freshRoot());
    const want = [
      fx.messages[3]?.id,
      fx.messages[12]?.id,
      "999999999999",
      "not-a-number",
      fx.messages[0]?.id,
    ] as string[];
    const got = scanAll(fx.root, { ids: want }).map((c) => `${c.message.id}:${c.message.state}`);
    assert.deepEqual(got, [`${want[0]}:bouncing`, `${want[1]}:todo`, `${want[4]}:preprocessed`]);
  });

  test("a prefilter sees raw header blocks and spares the envelope reads of rejected messages", () => {
    const fx = rebuildRealQueue(freshRoot());
    const layout = detectLayout(fx.root);
    const count = (prefilter: (b: Buffer) => boolean) => {
      const { found, reads } = scanCountingReads(layout, { prefilter });
      return { ids: found.map((c) => c.message.id), reads, found };
    };
    const abcde = count((block) => block.includes("abcde.net"));
    const expected = fx.messages.filter((m) =>
      m.files.mess?.subarray(0, m.files.mess.indexOf("\n\n")).includes("abcde.net"),
    );
    assert.deepEqual(abcde.ids.sort(), expected.map((m) => m.id).sort());
    assert.ok(expected.length >= 3);
    const none = count(() => false);
    const all = count(() => true);
    assert.deepEqual(none.ids, []);
    assert.equal(all.ids.length, 14);
    // At least one read more for each envelope file the rejecting prefilter spared.
    const spared = envelopeFiles(all.found);
    assert.ok(spared > all.ids.length, `${spared} envelope files`);
    assert.ok(
      all.reads - none.reads >= spared,
      `reads: all ${all.reads}, none ${none.reads}, spared ${spared}`,
    );
  });

  test("headers: false skips decoding but keeps fingerprint and envelope", () => {
    const fx = rebuildRealQueue(freshRoot());
    const withHeaders = byId(scanAll(fx.root));
    for (const c of scanAll(fx.root, { headers: false })) {
      assert.equal(c.message.headers.subject, "");
      assert.equal(c.message.fingerprint, withHeaders.get(c.message.id)?.fingerprint);
      assert.deepEqual(c.message.recipients, withHeaders.get(c.message.id)?.recipients);
    }
  });
});

describe("scan: odd queues", () => {
  test("an empty queue yields nothing; a missing root is an error naming it", () => {
    const root = freshRoot();
    QueueBuilder.create(root);
    assert.deepEqual(scanAll(root), []);
    assert.throws(() => scanAll(path.join(tmp, "nope")), /cannot read queue root .*nope: ENOENT/);
  });

  test("split 7, split 1 and big-todo", () => {
    for (const [split, bigTodo] of [
      [7, false],
      [1, false],
      [5, true],
    ] as const) {
      const root = freshRoot();
      const q = QueueBuilder.create(root, { split, bigTodo });
      const ids = [q.add({ message: "Subject: a\n\nx\n" }).id, q.add({ message: "Subject: b\n\nx\n" }).id];
      const todo = q.add({ message: "Subject: t\n\nx\n", state: "todo" }).id;
      const got = scanAll(root);
      assert.deepEqual(got.map((c) => c.message.id).sort(), [...ids, todo].sort(), `split ${split}`);
      assert.equal(got.find((c) => c.message.id === todo)?.message.state, "todo");
      assert.equal(
        got.find((c) => c.message.id === todo)?.message.paths.todo,
        bigTodo ? `todo/${Number(todo) % split}/${todo}` : `todo/${todo}`,
      );
    }
  });

  test("disagreeing split dirs still read", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 3 });
    const ids = Array.from({ length: 9 }, () => q.add({ message: "x\n" }).id);
    q.removeEntry("local/2");
    q.addEntry("remote/3", { kind: "dir" });
    assert.equal(scanAll(root).length, ids.length);
  });

  test("odd entries and symlinks are ignored and never followed", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 3 });
    const real = q.add({ message: "Subject: real\n\nx\n" });
    const secret = path.join(tmp, `secret${n}`);
    fs.writeFileSync(secret, "Subject: secret\n\nx\n");
    q.addEntry("info/1/123.bak", { kind: "file", content: "Fx\0" });
    q.addEntry("info/2/.hidden", { kind: "file", content: "Fx\0" });
    q.addEntry("info/0/lost+found", { kind: "dir" });
    q.addEntry("todo/lost+found", { kind: "dir" });
    q.addEntry("bounce/.x", { kind: "file" });
    // A symlinked info and a message whose mess is a symlink to a file outside the queue.
    const victim = q.holdInode();
    q.addEntry(`info/${Number(victim) % 3}/${victim}`, { kind: "symlink", target: real.paths.info });
    const other = q.holdInode();
    q.addEntry(`info/${Number(other) % 3}/${other}`, { kind: "file", content: "Fa@b\0" });
    q.addEntry(`mess/${Number(other) % 3}/${other}`, { kind: "symlink", target: secret });
    q.addEntry(`todo/${q.holdInode()}`, { kind: "symlink", target: "/etc/passwd" });
    const got = scanAll(root);
    assert.deepEqual(
      got.map((c) => c.message.headers.subject),
      ["real"],
    );
    q.close();
  });

  test("names that are no plain number (a leading zero, 17 digits) are walked after their split dir's plain ones, with their channel files and bounce", async () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 3 });
    const plain = [
      q.add({ message: "Subject: plain\n\nx\n" }).id,
      q.add({ message: "Subject: plain\n\nx\n" }).id,
    ];
    const add = (id: string, channel: "local" | "remote", bouncing: boolean) => {
      const n = splitDirOf(id);
      q.addEntry(`mess/${n}/${id}`, { kind: "file", content: `Subject: ${id}\n\nx\n` });
      q.addEntry(`info/${n}/${id}`, { kind: "file", content: `F${id}@x\0` });
      q.addEntry(`${channel}/${n}/${id}`, { kind: "file", content: "Tr@x\0" });
      if (bouncing) q.addEntry(`bounce/${id}`, { kind: "file", content: "" });
    };
    // Each in the split dir of a plain one (inode numbers may all fall in one split dir): a
    // leading zero, and 17 digits, past a safe integer (3 * 10^16 + id: the same remainder).
    const leadingZero = `0${plain[0]}`;
    const pastSafe = String(3n * 10n ** 16n + BigInt(plain[1] as string));
    add(leadingZero, "local", true);
    add(pastSafe, "remote", false);
    const layout = detectLayout(root);
    const pipelined: ScanCandidate[] = [];
    for await (const c of scanQueue(layout)) pipelined.push(c);
    for (const got of [scanAll(root), pipelined]) {
      const odd = got.filter((c) => !plain.includes(c.message.id));
      const byName = [...odd].sort((a, b) => (a.message.id < b.message.id ? -1 : 1));
      assert.deepEqual(
        byName.map(({ message: m }) => [
          m.id,
          m.state,
          m.sender,
          m.recipients.map((r) => r.channel),
          m.headers.subject,
        ]),
        [
          [leadingZero, "bouncing", `${leadingZero}@x`, ["local"], leadingZero],
          [pastSafe, "preprocessed", `${pastSafe}@x`, ["remote"], pastSafe],
        ],
      );
      // Twin: the plain ones are there too, each before the odd one of its split dir.
      assert.deepEqual(
        got
          .map((c) => c.message.id)
          .filter((id) => plain.includes(id))
          .sort(),
        [...plain].sort(),
      );
      for (const c of odd) {
        for (const id of plain.filter((p) => splitDirOf(p) === splitDirOf(c.message.id)))
          assert.ok(got.indexOf(c) > got.findIndex((p) => p.message.id === id), `${id}, ${c.message.id}`);
      }
    }
  });

  test("a mess file whose name is not its inode is still listed under its name", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const m = q.add({ message: "Subject: renamed\n\nx\n", name: true });
    const got = scanAll(root);
    assert.deepEqual(
      got.map((c) => c.message.id),
      [m.id],
    );
    q.close();
  });

  test("orphans: info without mess and files in a wrong split dir are skipped, mess without info is not a message", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 5 });
    const ok = q.add({ message: "x\n" });
    q.add({ message: "x\n", omit: ["mess"] });
    q.add({ message: "x\n", omit: ["info", "remote"] });
    q.add({ message: "x\n", omit: ["mess", "info", "remote"], bounce: "b\n" });
    q.add({ message: "x\n", wrongSplit: ["info"] });
    assert.deepEqual(
      scanAll(root).map((c) => c.message.id),
      [ok.id],
    );
    q.close();
  });

  test("a message being written (intd only) is listed as being-written", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const m = q.add({
      message: "Subject: w\n\nx\n",
      state: "being-written",
      sender: "w@x",
      recipients: [{ address: "r@y" }],
    });
    const got = scanAll(root);
    assert.equal(got.length, 1);
    assert.equal(got[0]?.message.state, "being-written");
    assert.equal(got[0]?.message.id, m.id);
    assert.equal(got[0]?.message.sender, "w@x");
  });

  test("a message caught mid-preprocessing (info and todo both there) is listed once, as preprocessed", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const m = q.add({ message: "x\n", state: "todo" });
    fs.writeFileSync(path.join(root, m.paths.info), "Fa@b\0");
    fs.writeFileSync(path.join(root, m.paths.remote), "Tr@x\0");
    const got = scanAll(root);
    assert.deepEqual(
      got.map((c) => `${c.message.id}:${c.message.state}`),
      [`${m.id}:preprocessed`],
    );
    fs.rmSync(path.join(root, m.paths.info));
    assert.deepEqual(
      scanAll(root).map((c) => c.message.state),
      ["todo"],
    );
  });

  test("malformed records: missing NUL kept, unknown types skipped, empty info read as <>", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const a = q.add({
      message: "x\n",
      raw: { info: Buffer.from("Fno-nul@x"), remote: Buffer.from("Tr1@x\0Xodd\0Tr2@x") },
    });
    const b = q.add({ message: "x\n", raw: { info: Buffer.alloc(0), remote: Buffer.alloc(0) } });
    const got = byId(scanAll(root));
    assert.equal(got.get(a.id)?.sender, "no-nul@x");
    assert.deepEqual(
      got.get(a.id)?.recipients.map((r) => r.address),
      ["r1@x", "r2@x"],
    );
    assert.equal(got.get(b.id)?.sender, "");
    assert.deepEqual(got.get(b.id)?.recipients, []);
  });

  test("8-bit addresses and empty and #@[] senders", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const utf8 = q.add({
      message: "x\n",
      sender: "山田@example.jp",
      recipients: [{ address: "ü@x.example" }],
    });
    const raw = q.add({ message: "x\n", raw: { info: Buffer.from([0x46, 0xfc, 0x40, 0x78, 0]) } });
    const empty = q.add({ message: "x\n", sender: "" });
    const dbl = q.add({ message: "x\n", sender: "#@[]" });
    const got = byId(scanAll(root));
    assert.equal(got.get(utf8.id)?.sender, "山田@example.jp");
    assert.equal(got.get(utf8.id)?.recipients[0]?.address, "ü@x.example");
    assert.equal(got.get(raw.id)?.sender.length, 3);
    assert.equal(got.get(empty.id)?.sender, "");
    assert.equal(got.get(dbl.id)?.sender, "#@[]");
  });

  test("CRLF, folded, duplicate and missing headers, no blank line, NUL bytes", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const crlf = q.add({ message: "From: a@b\r\nSubject: crlf\r\n\r\nbody\r\n" });
    const folded = q.add({ message: "Subject: one\n two\n\nbody\n" });
    const dup = q.add({ message: "Subject: first\nSubject: second\n\nbody\n" });
    const missing = q.add({ message: "From: a@b\n\nbody\n" });
    const noBlank = q.add({ message: "Subject: no body\nFrom: a@b\n" });
    const nul = q.add({ message: Buffer.from("Subject: nul\0here\n\nbo\0dy\n") });
    const list = scanAll(root);
    const c = (id: string) => list.find((x) => x.message.id === id) as ScanCandidate;
    assert.equal(c(crlf.id).message.headers.subject, "crlf");
    assert.equal(c(crlf.id).readBody(100).toString(), "body\r\n");
    assert.equal(c(folded.id).message.headers.subject, "one two");
    assert.equal(c(dup.id).message.headers.subject, "first");
    assert.equal(c(missing.id).message.headers.subject, "");
    assert.equal(c(noBlank.id).message.headers.subject, "no body");
    assert.equal(c(noBlank.id).headComplete, false);
    assert.equal(c(noBlank.id).readBody(100).length, 0);
    assert.ok(c(nul.id).headBlock.includes(Buffer.from("nul\0here")));
    assert.deepEqual(c(nul.id).readBody(100), Buffer.from("bo\0dy\n"));
    assert.deepEqual(c(nul.id).readRaw(8), Buffer.from("Subject:"));
  });

  test("a 50 MB message is scanned from its head only", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const big = Buffer.alloc(50 * 1024 * 1024, 0x41);
    Buffer.from("Subject: huge\n\n").copy(big);
    const m = q.add({ message: big });
    const messPath = path.join(root, m.paths.mess);
    // The kernel's read counter for this process: it must grow by far less than the file.
    const { got, read } = withPlainReads(() => {
      const before = ioCounter("rchar");
      return { got: scanAll(root), read: ioCounter("rchar") - before };
    });
    assert.equal(got[0]?.message.size, 50 * 1024 * 1024);
    assert.equal(got[0]?.message.headers.subject, "huge");
    assert.ok(read < 1024 * 1024, `read ${read} bytes to scan a 50 MB message`);
    assert.equal(got[0]?.readBody(10).toString(), "AAAAAAAAAA");
    assert.equal(fs.statSync(messPath).size, big.length);
  });

  test("a header block longer than the first read is read up to its end", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const long = `X-Long: ${"y".repeat(40000)}\nSubject: after a long header\n\nbody\n`;
    q.add({ message: long });
    const got = scanAll(root, { headBytes: 4096 });
    assert.equal(got[0]?.message.headers.subject, "after a long header");
    assert.equal(got[0]?.headComplete, true);
  });
});

describe("scan with a selection (ScanOptions.select)", () => {
  const failureNotice: ScanSelection = {
    filter: {
      criteria: [
        { kind: "headerRegex", pattern: { source: "^Subject: failure notice$", caseInsensitive: true } },
        { kind: "state", state: "bouncing", negate: true },
      ],
    },
    now: 1_795_900_000,
  };

  /** A queue where some messages match failureNotice, some only by their header, some not at all. */
  function mixedQueue(): { layout: ReturnType<typeof detectLayout>; q: QueueBuilder } {
    const fx = rebuildRealQueue(freshRoot());
    const q = QueueBuilder.create(fx.root);
    for (let i = 0; i < 300; i++) {
      const subject =
        i % 3 === 0 ? "failure notice" : i % 3 === 1 ? "=?UTF-8?Q?failure_notice?=" : `hello ${i}`;
      q.add({ message: `Subject: ${subject}\n\nbody ${i}\n`, bounce: i % 5 === 0 ? "b\n" : undefined });
    }
    return { layout: detectLayout(fx.root), q };
  }

  test("gives what filtering the whole scan gives, in the same order, synchronously and pipelined", async () => {
    const { layout, q } = mixedQueue();
    const compiled = compileFilter(failureNotice.filter, failureNotice.now);
    const expected = [...scanQueueSync(layout)].filter((c) => compiled.matches(c)).map((c) => c.message);
    // Encoded and plain subjects match, bouncing ones do not: 200 of 300, less the bouncing.
    assert.ok(expected.length > 150 && expected.length < 200, `${expected.length} selected`);
    assert.deepEqual(
      [...scanQueueSync(layout, { select: failureNotice })].map((c) => c.message),
      expected,
    );
    const pipelined: QueuedMessage[] = [];
    for await (const c of scanQueue(layout, { select: failureNotice })) pipelined.push(c.message);
    assert.deepEqual(pipelined, expected);
    q.close();
  });

  test("a message its header criteria reject costs no envelope read; a bad filter fails before reading", () => {
    const { layout, q } = mixedQueue();
    const reads = (select: ScanSelection) => scanCountingReads(layout, { select });
    const nothing: ScanSelection = {
      filter: {
        criteria: [{ kind: "headerRegex", pattern: { source: "^X-Never:", caseInsensitive: false } }],
      },
      now: 0,
    };
    const everything: ScanSelection = { filter: { criteria: [{ kind: "all" }] }, now: 0 };
    const none = reads(nothing);
    const all = reads(everything);
    assert.equal(none.found.length, 0);
    assert.equal(all.found.length, 314);
    // Every message's head is read either way; its envelope files only for `all`.
    const spared = envelopeFiles(all.found);
    assert.ok(spared > 600, `${spared} envelope files`);
    assert.ok(
      all.reads - none.reads >= spared,
      `reads: all ${all.reads}, none ${none.reads}, spared ${spared}`,
    );
    const bad: ScanSelection = {
      filter: { criteria: [{ kind: "headerRegex", pattern: { source: "(a", caseInsensitive: false } }] },
      now: 0,
    };
    assert.throws(() => scanQueue(layout, { select: bad }), /invalid filter, criterion 1/);
    q.close();
  });

  test("a selection on the decoded subject has headers decoded, even when the caller asks for none", () => {
    const { layout, q } = mixedQueue();
    q.close();
    const select: ScanSelection = {
      filter: { criteria: [{ kind: "subjectContains", text: "failure notice" }] },
      now: 0,
    };
    const decoded = [...scanQueueSync(layout, { select })].map((c) => c.message);
    // 100 raw and 100 encoded subjects of mixedQueue, and those of the real queue.
    assert.ok(decoded.length >= 200, `${decoded.length} selected`);
    assert.deepEqual(
      [...scanQueueSync(layout, { select, headers: false })].map((c) => c.message),
      decoded,
    );
  });

  test("while the selection rejects message after message, the event loop gets turns and a cancel stops it", async () => {
    const { layout, q } = mixedQueue();
    for (let i = 0; i < 3000; i++) q.add({ message: `Subject: hello ${i}\n\nbody\n` });
    q.close();
    const nothing: ScanSelection = {
      filter: {
        criteria: [{ kind: "headerRegex", pattern: { source: "^X-Nowhere:", caseInsensitive: false } }],
      },
      now: 0,
    };
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const found = [];
    for await (const c of scanQueue(layout, { select: nothing })) found.push(c);
    clearInterval(ticker);
    assert.equal(found.length, 0);
    assert.ok(turns > 0, "timers ran during a scan that yielded nothing");

    const abort = new AbortController();
    let read = 0;
    const stopper = setTimeout(() => abort.abort(new Error("client went away")), 1);
    const all: ScanSelection = { filter: { criteria: [{ kind: "all" }] }, now: 0 };
    await assert.rejects(async () => {
      for await (const _ of scanQueue(layout, { select: nothing, signal: abort.signal })) read++;
    }, /client went away/);
    clearTimeout(stopper);
    assert.equal(read, 0);
    // Its twin: the same scan without a cancel runs to the end.
    let every = 0;
    for await (const _ of scanQueue(layout, { select: all, signal: new AbortController().signal })) every++;
    assert.equal(every, 3314);
  });
});

describe("scan without the envelope (ScanOptions.envelope: false)", () => {
  test("names the same messages with the same fingerprints, states and headers, reading far less", async () => {
    const fx = rebuildRealQueue(freshRoot());
    const layout = detectLayout(fx.root);
    const { found: whole, reads: wholeReads } = scanCountingReads(layout, {});
    const { found: bare, reads: bareReads } = scanCountingReads(layout, { envelope: false });
    const view = (c: ScanCandidate) => [
      c.message.id,
      c.message.fingerprint,
      c.message.state,
      c.message.size,
      c.message.headers,
    ];
    assert.deepEqual(bare.map(view), whole.map(view));
    for (const c of bare) {
      assert.equal(c.message.sender, "");
      assert.deepEqual(c.message.recipients, []);
      assert.equal(c.message.birthTime, 0);
    }
    // At least one read fewer per envelope file spared.
    const spared = envelopeFiles(whole);
    assert.ok(spared > whole.length, `${spared} envelope files for ${whole.length} messages`);
    assert.ok(
      wholeReads - bareReads >= spared,
      `reads: whole ${wholeReads}, bare ${bareReads}, spared ${spared}`,
    );
    const pipelined: ScanCandidate[] = [];
    for await (const c of scanQueue(layout, { envelope: false })) pipelined.push(c);
    assert.deepEqual(
      pipelined.map((c) => c.message),
      bare.map((c) => c.message),
    );
  });

  test("a selection that reads the envelope has it read anyway", () => {
    const fx = rebuildRealQueue(freshRoot());
    const layout = detectLayout(fx.root);
    const sender = [...scanQueueSync(layout)].find((c) => c.message.sender !== "")?.message.sender as string;
    const select: ScanSelection = { filter: { criteria: [{ kind: "senderExact", sender }] }, now: 0 };
    const withEnvelope = [...scanQueueSync(layout, { select })].map((c) => c.message);
    assert.ok(withEnvelope.length > 0);
    assert.deepEqual(
      [...scanQueueSync(layout, { select, envelope: false })].map((c) => c.message),
      withEnvelope,
    );
  });
});

describe("pipelined scan (reads ahead on the thread pool)", () => {
  test("gives the same candidates in the same order as the synchronous walk, over many chunks", async () => {
    const fx = rebuildRealQueue(freshRoot());
    const q = QueueBuilder.create(fx.root);
    for (let i = 0; i < 1200; i++)
      q.add({ message: `Subject: m${i}\n\nbody ${i}\n`, bounce: i % 7 === 0 ? "b\n" : undefined });
    const layout = detectLayout(fx.root);
    const inThread = [...scanQueueSync(layout)];
    const pipelined: ScanCandidate[] = [];
    for await (const c of scanQueue(layout)) pipelined.push(c);
    assert.equal(pipelined.length, 1214);
    assert.deepEqual(
      pipelined.map((c) => c.message),
      inThread.map((c) => c.message),
    );
    for (let i = 0; i < inThread.length; i++) {
      const a = inThread[i] as ScanCandidate;
      const b = pipelined[i] as ScanCandidate;
      assert.deepEqual(b.headBlock, a.headBlock);
      assert.equal(b.headComplete, a.headComplete);
      assert.deepEqual(b.readBody(50), a.readBody(50));
    }
    q.close();
  });

  test("a consumer that stops early stops the reads; an unreadable split dir fails the scan", async () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 4 });
    for (let i = 0; i < 2000; i++) q.add({ message: "x\n" });
    const layout = detectLayout(root);
    let seen = 0;
    for await (const _ of scanQueue(layout)) if (++seen === 3) break;
    assert.equal(seen, 3);
    // A file where split dir info/2 should be: ENOTDIR, a clear error.
    q.removeEntry("info/2");
    q.addEntry("info/2", { kind: "file" });
    await assert.rejects(async () => {
      for await (const _ of scanQueue(layout)) {
        // drain
      }
    }, /cannot read .*info\/2: ENOTDIR/);
    q.removeEntry("info/2");
    q.addEntry("info/2", { kind: "dir" });
    let all = 0;
    for await (const _ of scanQueue(layout)) all++;
    assert.ok(all > 0);
  });

  test("a queue file that cannot be opened fails the scan naming it; its twin, the same queue without it, scans", async () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const ids = Array.from({ length: 600 }, (_, i) => q.add({ message: `Subject: s${i}\n\nbody\n` }).id);
    q.close();
    const layout = detectLayout(root);
    // A socket opens with ENXIO even for root: neither "gone" nor "not a file to read".
    const victim = ids[400] as string;
    const mess = `${root}/${messagePaths(layout, victim).mess}`;
    fs.unlinkSync(mess);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(mess, resolve));
    try {
      const pattern = new RegExp(`cannot read ${mess}: ENXIO`);
      await assert.rejects(async () => {
        for await (const _ of scanQueue(layout)) {
          // drain
        }
      }, pattern);
      assert.throws(() => [...scanQueueSync(layout)], pattern);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    fs.rmSync(mess, { force: true });
    let scanned = 0;
    for await (const _ of scanQueue(layout)) scanned++;
    // The victim's mess is gone: it is skipped, the other 599 read.
    assert.equal(scanned, 599);
  });
});
