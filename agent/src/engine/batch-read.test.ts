import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runSourceScript } from "@qmfleet/test";
import { type BatchRequest, FileBatch, type QueueFileRead, readBatch, readBatchSync } from "./batch-read.js";
import { eachReader, readBatchPlain } from "./batch-readers.test-support.js";
import { cutHeaderBlock, cutKeptHead } from "./headers.js";
import { QueueAccessError } from "./layout.js";
import { native } from "./native.js";
import { WHOLE_FILE_MAX } from "./queue-file.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-batch-read-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The mtime every file written by freshRoot gets. */
const MTIME = 1_700_000_000;
let n = 0;

function write(root: string, rel: string, content: string | Buffer): string {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  fs.utimesSync(abs, MTIME, MTIME);
  return abs;
}

/** A new directory under the temp dir holding `files` (relative path to content). */
function freshRoot(files: Record<string, string | Buffer> = {}): string {
  const root = path.join(tmp, `r${n++}`);
  fs.mkdirSync(root);
  for (const [rel, content] of Object.entries(files)) write(root, rel, content);
  return root;
}

/** `length` bytes of every value (NUL, CR and LF included), the same for the same seed. */
function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

type Outcome = QueueFileRead | undefined | { error: string; code: string; path: string };

/** What file(i) gives for every i, in order: a copy of the bytes, undefined, or the error. */
function outcomesOf(batch: FileBatch, count: number): Outcome[] {
  const out: Outcome[] = [];
  for (let i = 0; i < count; i++) {
    try {
      const f = batch.file(i);
      out.push(f && { data: Buffer.from(f.data), size: f.size, mtime: f.mtime });
    } catch (err) {
      assert.ok(err instanceof QueueAccessError, `file(${i}) throws a QueueAccessError, not ${err}`);
      out.push({ error: err.message, code: err.code, path: err.path });
    }
  }
  return out;
}

/**
 * Reads req with readBatchSync, with readBatch and with the plain calls only, which must all
 * give the same (where the kernel has io_uring, the first two read through it); returns what
 * they give.
 */
async function readBoth(root: string, req: BatchRequest): Promise<Outcome[]> {
  const sync = outcomesOf(readBatchSync(root, req), req.paths.length);
  const pooled = outcomesOf(await readBatch(root, req), req.paths.length);
  assert.deepEqual(pooled, sync, "readBatch gives what readBatchSync gives");
  const plain = outcomesOf(readBatchPlain(root, req), req.paths.length);
  assert.deepEqual(plain, sync, "the plain calls give what the io_uring fast path gives");
  return sync;
}

function readOf(o: Outcome, what: string): QueueFileRead {
  assert.ok(o !== undefined && !("error" in o), `${what} is read`);
  return o;
}

/** The text of every outcome, each of which must have been read. */
function textsOf(got: Outcome[], names?: string[]): string[] {
  return got.map((o, i) => readOf(o, names?.[i] ?? "file").data.toString());
}

/** assert.throws' check of a file's QueueAccessError: its code, its path, and where given how its message starts. */
function fileError(label: string, code: string, abs: string, messageStart?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof QueueAccessError, `${label}: ${err}`);
    assert.equal(err.code, code);
    assert.equal(err.path, abs);
    if (messageStart) assert.ok(err.message.startsWith(messageStart), err.message);
    return true;
  };
}

describe("readBatch: limit > 0", () => {
  test("reads at most limit bytes: a shorter file gives its bytes and length, a longer one limit bytes and its real size", async () => {
    const short = bytes(10, 1);
    const exact = bytes(100, 2);
    const long = bytes(1000, 3);
    const root = freshRoot({ short, exact, long, empty: "" });
    for (const mtime of [false, true]) {
      const t = mtime ? MTIME : 0;
      const got = await readBoth(root, { paths: ["long", "short", "exact", "empty"], limit: 100, mtime });
      assert.deepEqual(got, [
        { data: long.subarray(0, 100), size: 1000, mtime: t },
        { data: short, size: 10, mtime: t },
        { data: exact, size: 100, mtime: t },
        { data: Buffer.alloc(0), size: 0, mtime: t },
      ]);
      assert.deepEqual(await readBoth(root, { paths: ["long", "short"], limit: 1, mtime }), [
        { data: long.subarray(0, 1), size: 1000, mtime: t },
        { data: short.subarray(0, 1), size: 10, mtime: t },
      ]);
    }
  });
});

describe("readBatch: limit 0 reads whole files", () => {
  test("an empty file, a 200 KB and a 3 MB file (past the 64 KiB first buffer) byte for byte, with their sizes", async () => {
    const k200 = bytes(200 * 1024, 4);
    const m3 = bytes(3 * 1024 * 1024, 5);
    const around64k = [65535, 65536, 65537].map((len, i) => bytes(len, 10 + i));
    const root = freshRoot({
      empty: "",
      k200,
      m3,
      a: around64k[0] ?? "",
      b: around64k[1] ?? "",
      c: around64k[2] ?? "",
    });
    const whole = (data: Buffer) => ({ data, size: data.length, mtime: 0 });
    assert.deepEqual(await readBoth(root, { paths: ["m3"], limit: 0 }), [whole(m3)]);
    assert.deepEqual(await readBoth(root, { paths: ["empty"], limit: 0 }), [whole(Buffer.alloc(0))]);
    assert.deepEqual(
      await readBoth(root, { paths: ["empty", "k200", "a", "m3", "b", "c", "empty"], limit: 0 }),
      [
        whole(Buffer.alloc(0)),
        whole(k200),
        ...[around64k[0], m3, around64k[1], around64k[2]].map((d) => whole(d as Buffer)),
        whole(Buffer.alloc(0)),
      ],
    );
    const withMtime = await readBoth(root, { paths: ["k200", "m3"], limit: 0, mtime: true });
    assert.deepEqual(withMtime, [
      { data: k200, size: k200.length, mtime: MTIME },
      { data: m3, size: m3.length, mtime: MTIME },
    ]);
  });

  test("a file past WHOLE_FILE_MAX fails with EFBIG naming it, the others read; twin: one of exactly WHOLE_FILE_MAX reads whole", async () => {
    const root = freshRoot({ before: "T a@b\0", after: "F c@d\0" });
    // Sparse: 64 MiB of zeros that take no disk.
    for (const [name, size] of [
      ["at", WHOLE_FILE_MAX],
      ["past", WHOLE_FILE_MAX + 1],
    ] as const) {
      fs.closeSync(fs.openSync(path.join(root, name), "w"));
      fs.truncateSync(path.join(root, name), size);
    }
    const zeros = Buffer.alloc(WHOLE_FILE_MAX);
    // With mtime the size is known before reading (fstat); without, the read in steps finds it.
    for (const mtime of [false, true]) {
      for (const [label, batch] of await eachReader(root, {
        paths: ["before", "past", "at", "after"],
        limit: 0,
        mtime,
      })) {
        const what = `${label}, mtime ${mtime}`;
        assert.equal(batch.file(0)?.data.toString(), "T a@b\0", what);
        assert.throws(
          () => batch.file(1),
          fileError(
            what,
            "EFBIG",
            path.join(root, "past"),
            `cannot read ${path.join(root, "past")}: EFBIG (larger than any qmail envelope`,
          ),
        );
        const at = batch.file(2);
        assert.equal(at?.size, WHOLE_FILE_MAX, what);
        assert.equal(at?.data.length, WHOLE_FILE_MAX, what);
        assert.ok(at?.data.equals(zeros), what);
        assert.equal(batch.file(3)?.data.toString(), "F c@d\0", what);
      }
    }
  });
});

describe("readBatch: mtime", () => {
  test("mtime: true gives the file's mtime in whole seconds; without it, mtime is 0", async () => {
    const content = bytes(300, 6);
    const root = freshRoot({ f: content });
    fs.utimesSync(path.join(root, "f"), 1_000_000_000, 1_234_567_890.75);
    // limit 0 (fstat for the size), a limit the file fills (fstat after the read), one it does not.
    for (const limit of [0, 4, 4096]) {
      const data = limit === 0 ? content : content.subarray(0, limit);
      assert.deepEqual(await readBoth(root, { paths: ["f"], limit, mtime: true }), [
        { data, size: 300, mtime: 1_234_567_890 },
      ]);
      assert.deepEqual(await readBoth(root, { paths: ["f"], limit }), [{ data, size: 300, mtime: 0 }]);
      assert.deepEqual(await readBoth(root, { paths: ["f"], limit, mtime: false }), [
        { data, size: 300, mtime: 0 },
      ]);
    }
    fs.utimesSync(path.join(root, "f"), 1_000_000_000, 2_000_000_001);
    assert.equal(
      readOf((await readBoth(root, { paths: ["f"], limit: 0, mtime: true }))[0], "f").mtime,
      2_000_000_001,
    );
  });
});

describe("readBatch: headOnly", () => {
  const cases: { name: string; file: string; head: string }[] = [
    { name: "LF LF", file: "Subject: a\nTo: b\n\nbody\n\nmore\n", head: "Subject: a\nTo: b\n\n" },
    { name: "LF CR LF", file: "Subject: a\nTo: b\n\r\nbody\n\nmore\n", head: "Subject: a\nTo: b\n\r\n" },
    {
      name: "CRLF CRLF",
      file: "Subject: a\r\nTo: b\r\n\r\nbody\r\n\r\nx\r\n",
      head: "Subject: a\r\nTo: b\r\n\r\n",
    },
    { name: "an empty first line (LF)", file: "\nbody: not a field\n\nmore\n", head: "\n" },
    { name: "an empty first line (CR LF)", file: "\r\nbody: not a field\r\n\r\nmore\r\n", head: "\r\n" },
    { name: "no empty line", file: "Subject: a\nTo: b\r\nX: c\n", head: "Subject: a\nTo: b\r\nX: c\n" },
    { name: "an LF CR LF before an LF LF", file: "A: 1\n\r\nB: 2\n\nC\n", head: "A: 1\n\r\n" },
    { name: "an LF LF before an LF CR LF", file: "A: 1\n\nB: 2\n\r\nC\n", head: "A: 1\n\n" },
    { name: "a CR in a line, then LF LF", file: "A: 1\r\rx\nB\n\nC\r\n\r\n", head: "A: 1\r\rx\nB\n\n" },
  ];

  for (const c of cases) {
    test(`${c.name}: the data ends right after the header block's empty line`, async () => {
      const file = Buffer.from(c.file, "latin1");
      const head = Buffer.from(c.head, "latin1");
      const root = freshRoot({ f: file });
      const whole = cutHeaderBlock(file);
      // Whole, a limit longer than the file, and limits that cut the file at or after its empty line.
      for (const limit of [0, 4096, head.length, head.length + 1]) {
        for (const mtime of [false, true]) {
          const got = readOf((await readBoth(root, { paths: ["f"], limit, headOnly: true, mtime }))[0], "f");
          assert.deepEqual(got.data, head, `limit ${limit}`);
          assert.equal(got.size, file.length, `limit ${limit}: the whole file's size`);
          assert.equal(got.mtime, mtime ? MTIME : 0);
          assert.deepEqual(cutHeaderBlock(got.data), whole, `limit ${limit}: the same header block`);
          assert.deepEqual(cutKeptHead(got.data), whole, `limit ${limit}: cut from its end alone`);
        }
      }
    });
  }

  test("an empty line beyond limit: all limit bytes are kept", async () => {
    const long = `Subject: ${"x".repeat(200)}\n\nbody\n`;
    const straddleLf = "A: 1\n\nbody\n";
    const straddleCrLf = "A: 1\r\n\r\nbody\r\n";
    const straddleLfCrLf = "A: 1\n\r\nbody\n";
    const root = freshRoot({ long, straddleLf, straddleCrLf, straddleLfCrLf });
    const expect = [
      ["long", long, 64],
      ["straddleLf", straddleLf, 5],
      ["straddleCrLf", straddleCrLf, 7],
      ["straddleLfCrLf", straddleLfCrLf, 6],
    ] as const;
    for (const [rel, content, limit] of expect) {
      const file = Buffer.from(content);
      const got = readOf((await readBoth(root, { paths: [rel], limit, headOnly: true }))[0], rel);
      assert.deepEqual(got.data, file.subarray(0, limit), rel);
      assert.equal(got.size, file.length, `${rel}: the whole file's size`);
      const cut = cutHeaderBlock(got.data);
      assert.deepEqual(cut, cutHeaderBlock(file.subarray(0, limit)), rel);
      assert.equal(cut.complete, false, `${rel}: no empty line within the limit`);
      assert.deepEqual(cutKeptHead(got.data), cut, `${rel}: cut from its end alone`);
    }
  });

  test("several files in one batch: each one's header block at its place", async () => {
    const files: Record<string, string> = {};
    for (const [i, c] of cases.entries()) files[`f${i}`] = c.file;
    const root = freshRoot(files);
    const paths = cases.flatMap((_, i) => [`f${i}`, `gone${i}`]);
    for (const limit of [0, 4096]) {
      const got = await readBoth(root, { paths, limit, headOnly: true });
      assert.deepEqual(
        got,
        cases.flatMap((c) => [
          { data: Buffer.from(c.head, "latin1"), size: Buffer.byteLength(c.file, "latin1"), mtime: 0 },
          undefined,
        ]),
      );
    }
  });
});

describe("readBatch: digest", () => {
  /** The first 32 hex digits of the SHA-256 of the header block cutHeaderBlock finds in data. */
  const blockDigest = (data: Buffer) =>
    crypto.createHash("sha256").update(cutHeaderBlock(data).block).digest("hex").slice(0, 32);
  const files = {
    lfLf: "Subject: a\nTo: b\n\nbody\n",
    crLf: "Subject: a\r\nTo: b\r\n\r\nbody\r\n",
    lfCrLf: "A: 1\n\r\nB: 2\n\nC\n",
    emptyFirst: "\nbody: not a field\n\nmore\n",
    emptyFirstCrLf: "\r\nbody\r\n",
    noEmptyLine: "Subject: a\nTo: b\r\nX: c\n",
    empty: "",
    binary: bytes(3000, 11),
    long: `Subject: ${"x".repeat(300)}\n\nbody\n`,
  };
  const names = Object.keys(files);

  test("each file's header block hashed in the reader, as fingerprint.ts hashes it; absent files have none to use", async () => {
    const root = freshRoot(files);
    const paths = names.flatMap((name) => [name, `${name}.gone`]);
    // Whole heads, and a limit that cuts the long one before its empty line.
    for (const limit of [4096, 64]) {
      for (const [reader, batch] of await eachReader(root, { paths, limit, headOnly: true, digest: true })) {
        names.forEach((name, k) => {
          const file = batch.file(2 * k);
          assert.ok(file, `${reader}: ${name} read`);
          assert.equal(batch.digest(2 * k), blockDigest(file.data), `${reader}, limit ${limit}: ${name}`);
          assert.equal(batch.file(2 * k + 1), undefined);
        });
      }
    }
  });

  test("no digests unless asked for, or while turned off; twin: asked for and on", async () => {
    const root = freshRoot(files);
    const req = { paths: names, limit: 4096, headOnly: true };
    for (const [reader, batch] of await eachReader(root, req))
      assert.equal(batch.digest(0), undefined, reader);
    const was = native.useDigests(false);
    try {
      for (const [reader, batch] of await eachReader(root, { ...req, digest: true }))
        assert.equal(batch.digest(0), undefined, `${reader}, turned off`);
    } finally {
      native.useDigests(was);
    }
    for (const [reader, batch] of await eachReader(root, { ...req, digest: true }))
      assert.equal(batch.digest(0), blockDigest(Buffer.from(files.lfLf)), reader);
  });
});

describe("readBatch: several files in one batch", () => {
  test("each file's bytes land at its place, with absent ones in between", async () => {
    const contents = {
      a: Buffer.from("AAA"),
      empty: Buffer.alloc(0),
      mid: bytes(5000, 7),
      big: bytes(70_000, 8),
      "sub/é-9": bytes(33, 9),
      tail: Buffer.from("Z"),
    };
    const root = freshRoot(contents);
    fs.mkdirSync(path.join(root, "dir"));
    const paths = ["a", "gone1", "empty", "mid", "dir", "big", "gone2", "sub/é-9", "tail", "a"];
    for (const limit of [0, 4096, 1]) {
      for (const mtime of [false, true]) {
        const expected = paths.map((p) => {
          const data = (contents as Record<string, Buffer>)[p];
          if (!data) return undefined;
          return {
            data: limit === 0 ? data : data.subarray(0, limit),
            size: data.length,
            mtime: mtime ? MTIME : 0,
          };
        });
        assert.deepEqual(
          await readBoth(root, { paths, limit, mtime }),
          expected,
          `limit ${limit}, mtime ${mtime}`,
        );
      }
    }
  });
});

describe("readBatch: directories along the paths", () => {
  test("paths that go back and forth between directories each read their own file", async () => {
    const contents: Record<string, string> = {
      "a/1": "a one",
      "b/1": "b one",
      "a/2": "a two",
      top: "at the root",
      "a/3": "a three",
      "c/deep/1": "c deep one",
      "b/2": "b two",
    };
    const root = freshRoot(contents);
    const paths = ["a/1", "b/1", "a/2", "top", "a/3", "c/deep/1", "b/2", "a/1", "top"];
    for (const req of [
      { paths, limit: 0 },
      { paths, limit: 64, mtime: true },
    ]) {
      const got = await readBoth(root, req);
      assert.deepEqual(
        textsOf(got, paths),
        paths.map((p) => contents[p]),
      );
    }
  });

  test("a directory on the path that is a file fails its files with ENOTDIR naming each; the others read; twin: as a directory it reads", async () => {
    const root = freshRoot({ "ok/1": "fine", "bad/1": "x" });
    const paths = ["ok/1", "bad/1", "bad/2", "ok/1"];
    fs.rmSync(path.join(root, "bad"), { recursive: true });
    write(root, "bad", "a file where a directory should be");
    for (const [name, batch] of await eachReader(root, { paths, limit: 0 })) {
      assert.equal(batch.file(0)?.data.toString(), "fine", name);
      for (const i of [1, 2]) {
        assert.throws(() => batch.file(i), fileError(name, "ENOTDIR", `${root}/${paths[i]}`));
      }
      assert.equal(batch.file(3)?.data.toString(), "fine", name);
    }
    fs.rmSync(path.join(root, "bad"));
    write(root, "bad/1", "one");
    write(root, "bad/2", "two");
    const got = await readBoth(root, { paths, limit: 0 });
    assert.deepEqual(textsOf(got), ["fine", "one", "two", "fine"]);
  });
});

describe("readBatch: nothing to read is undefined", () => {
  const requests: BatchRequest[] = [
    { paths: [], limit: 0 },
    { paths: [], limit: 64 },
    { paths: [], limit: 64, mtime: true, headOnly: true },
  ];
  const at = (req: BatchRequest, paths: string[]): BatchRequest => ({ ...req, paths });

  test("a missing file (ENOENT); twin: the same path as a file reads", async () => {
    const root = freshRoot({ before: "before" });
    for (const req of requests) {
      const got = await readBoth(root, at(req, ["missing", "before", "sub/missing"]));
      assert.equal(got[0], undefined);
      assert.equal(got[2], undefined);
      assert.equal(readOf(got[1], "before").data.toString(), "before");
    }
    write(root, "missing", "now here");
    write(root, "sub/missing", "here too");
    for (const req of requests) {
      const got = await readBoth(root, at(req, ["missing", "before", "sub/missing"]));
      assert.equal(readOf(got[0], "missing").data.toString(), "now here");
      assert.equal(readOf(got[2], "sub/missing").data.toString(), "here too");
    }
  });

  test("a symlink to a readable file is never followed; twin: the same path as a file reads", async () => {
    const secret = "SECRET-TARGET-BYTES";
    const root = freshRoot({ target: secret, plain: "plain" });
    fs.symlinkSync(path.join(root, "target"), path.join(root, "link"));
    fs.symlinkSync("target", path.join(root, "relative-link"));
    fs.symlinkSync(root, path.join(root, "dir-link"));
    fs.symlinkSync(path.join(root, "nowhere"), path.join(root, "dangling"));
    const links = ["link", "relative-link", "dir-link", "dangling"];
    for (const req of requests) {
      const r = at(req, [...links, "plain"]);
      const got = await readBoth(root, r);
      assert.deepEqual(got.slice(0, 4), [undefined, undefined, undefined, undefined]);
      assert.equal(readOf(got[4], "plain").data.toString(), "plain");
      // Not even in the batch's buffer, where the other files' bytes are.
      for (const [name, batch] of await eachReader(root, r)) {
        const plain = batch.file(4);
        assert.ok(plain);
        assert.equal(
          Buffer.from(plain.data.buffer).includes(secret),
          false,
          `${name}: no byte of the target`,
        );
      }
      // The target itself is readable.
      assert.equal(readOf((await readBoth(root, at(req, ["target"])))[0], "target").data.toString(), secret);
    }
    for (const link of links) {
      fs.unlinkSync(path.join(root, link));
      write(root, link, `file ${link}`);
    }
    for (const req of requests) {
      const got = await readBoth(root, at(req, [...links, "plain"]));
      assert.deepEqual(textsOf(got), [...links.map((l) => `file ${l}`), "plain"]);
    }
  });

  test("a directory (EISDIR); twin: the same path as a file reads", async () => {
    const root = freshRoot({ before: "before", "dir/inside": "inside" });
    fs.mkdirSync(path.join(root, "empty-dir"));
    for (const req of requests) {
      const got = await readBoth(root, at(req, ["dir", "before", "empty-dir"]));
      assert.equal(got[0], undefined);
      assert.equal(got[2], undefined);
      assert.equal(readOf(got[1], "before").data.toString(), "before");
    }
    fs.rmSync(path.join(root, "dir"), { recursive: true });
    fs.rmdirSync(path.join(root, "empty-dir"));
    write(root, "dir", "was a dir");
    write(root, "empty-dir", "was empty");
    for (const req of requests) {
      const got = await readBoth(root, at(req, ["dir", "before", "empty-dir"]));
      assert.equal(readOf(got[0], "dir").data.toString(), "was a dir");
      assert.equal(readOf(got[2], "empty-dir").data.toString(), "was empty");
    }
  });
});

describe("readBatch: a FIFO", () => {
  type Encoded = [string, number, number] | null | { code: string };
  const encode = (o: Outcome): Encoded =>
    o === undefined ? null : "error" in o ? { code: o.code } : [o.data.toString("hex"), o.size, o.mtime];

  /**
   * file(i) of every path, from readBatch and from readBatchSync, guarded against a blocking
   * open: readBatch raced against a timer (a writer opening the FIFO then lets the pool thread
   * go on), readBatchSync in a child process killed at a timeout, once as the agent reads and
   * once with the plain calls only (QMFLEET_IO_URING=0).
   */
  async function guardedReads(root: string, fifo: string, req: BatchRequest) {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<"hung">((resolve) => {
      timer = setTimeout(() => resolve("hung"), 10_000);
    });
    const pooled = await Promise.race([readBatch(root, req), hung]);
    clearTimeout(timer);
    if (pooled === "hung") {
      fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      assert.fail("readBatch blocked on a FIFO");
    }
    const script = [
      `import { readBatchSync } from ${JSON.stringify(fileURLToPath(new URL("./batch-read.ts", import.meta.url)))};`,
      `const req = ${JSON.stringify(req)};`,
      `const b = readBatchSync(${JSON.stringify(root)}, req);`,
      "const out = req.paths.map((_, i) => {",
      "  try { const f = b.file(i); return f ? [f.data.toString('hex'), f.size, f.mtime] : null; }",
      "  catch (err) { return { code: err.code }; }",
      "});",
      "console.log(JSON.stringify(out));",
    ].join("\n");
    const inChild = (env: NodeJS.ProcessEnv): Encoded[] => {
      const child = runSourceScript(script, { env, timeoutMs: 30_000 });
      assert.equal(child.signal, null, "readBatchSync blocked on a FIFO (killed at the timeout)");
      assert.equal(child.status, 0, child.stderr);
      return JSON.parse(child.stdout) as Encoded[];
    };
    return {
      pooled: outcomesOf(pooled, req.paths.length).map(encode),
      sync: inChild(process.env),
      plain: inChild({ ...process.env, QMFLEET_IO_URING: "0" }),
    };
  }

  function fifoRoot(): { root: string; fifo: string } {
    const root = freshRoot({ before: "before", after: "after!" });
    const fifo = path.join(root, "fifo");
    execFileSync("mkfifo", [fifo]);
    return { root, fifo };
  }
  const requests: BatchRequest[] = [
    { paths: ["before", "fifo", "after"], limit: 0 },
    { paths: ["before", "fifo", "after"], limit: 16, mtime: true },
    { paths: ["before", "fifo", "after"], limit: 16, headOnly: true },
  ];

  test("among the paths does not hang the read (O_NONBLOCK); the other files read", {
    timeout: 120_000,
  }, async () => {
    const { root, fifo } = fifoRoot();
    const req = requests[0] as BatchRequest;
    const { pooled, sync, plain } = await guardedReads(root, fifo, req);
    assert.deepEqual(sync, pooled, "readBatchSync gives what readBatch gives");
    assert.deepEqual(plain, pooled, "the plain calls give what the agent's reads give");
    assert.deepEqual(pooled[0], [Buffer.from("before").toString("hex"), 6, 0]);
    assert.deepEqual(pooled[2], [Buffer.from("after!").toString("hex"), 6, 0]);
  });

  test("reads as empty data, size 0", { timeout: 120_000 }, async () => {
    const { root, fifo } = fifoRoot();
    for (const req of requests) {
      const { pooled, sync, plain } = await guardedReads(root, fifo, req);
      assert.deepEqual(sync, pooled, "readBatchSync gives what readBatch gives");
      assert.deepEqual(plain, pooled, "the plain calls give what the agent's reads give");
      const mtime = req.mtime ? Math.floor(fs.lstatSync(fifo).mtimeMs / 1000) : 0;
      assert.deepEqual(pooled[1], ["", 0, mtime], `the FIFO, ${JSON.stringify(req)}`);
    }
  });
});
describe("readBatch: a file that cannot be read", () => {
  test("a unix socket fails with a QueueAccessError naming it and ENXIO; the batch's other files still read; twin: the same path as a file reads", async () => {
    const root = freshRoot({ a: "first", b: "second", c: "third" });
    const sock = path.join(root, "sock");
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    const paths = ["a", "b", "sock", "c"];
    try {
      for (const req of [
        { paths, limit: 0 },
        { paths, limit: 64, mtime: true, headOnly: true },
      ]) {
        for (const [name, batch] of await eachReader(root, req)) {
          assert.equal(batch.file(0)?.data.toString(), "first", name);
          assert.equal(batch.file(1)?.data.toString(), "second", name);
          assert.throws(
            () => batch.file(2),
            fileError(name, "ENXIO", `${root}/sock`, `cannot read ${root}/sock: ENXIO `),
          );
          assert.equal(batch.file(3)?.data.toString(), "third", name);
          assert.equal(batch.file(0)?.data.toString(), "first", `${name}: again after the error`);
        }
        const got = await readBoth(root, req);
        assert.deepEqual(got[2], {
          error: `cannot read ${root}/sock: ENXIO (check the file system)`,
          code: "ENXIO",
          path: `${root}/sock`,
        });
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    fs.rmSync(sock, { force: true });
    write(root, "sock", "a file now");
    const got = await readBoth(root, { paths, limit: 0 });
    assert.deepEqual(textsOf(got), ["first", "second", "a file now", "third"]);
  });
});

describe("readBatch: the root", () => {
  const rootError = (root: string, code: string) => (err: unknown) => {
    assert.ok(err instanceof QueueAccessError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.path, root);
    assert.ok(err.message.startsWith(`cannot open ${root}: ${code} `), err.message);
    return true;
  };

  test("a missing root throws (rejects) a QueueAccessError naming it and ENOENT; twin: an existing empty root with no paths gives an empty batch", async () => {
    const root = path.join(tmp, `missing-root-${n++}`);
    for (const paths of [[], ["a"], ["a", "b"]]) {
      assert.throws(() => readBatchSync(root, { paths, limit: 0 }), rootError(root, "ENOENT"));
      await assert.rejects(readBatch(root, { paths, limit: 64, mtime: true }), rootError(root, "ENOENT"));
    }
    fs.mkdirSync(root);
    assert.ok(readBatchSync(root, { paths: [], limit: 0 }) instanceof FileBatch);
    assert.ok((await readBatch(root, { paths: [], limit: 0 })) instanceof FileBatch);
    assert.deepEqual(await readBoth(root, { paths: ["a"], limit: 0 }), [undefined]);
  });

  test("a root that is a file throws (rejects) ENOTDIR", async () => {
    const root = write(freshRoot(), "file", "not a dir");
    assert.throws(() => readBatchSync(root, { paths: ["a"], limit: 0 }), rootError(root, "ENOTDIR"));
    await assert.rejects(readBatch(root, { paths: ["a"], limit: 0 }), rootError(root, "ENOTDIR"));
  });
});

describe("readBatch: atime (O_NOATIME)", () => {
  const OLD_ATIME = 1_000_000_000;
  const NEWER_MTIME = 1_500_000_000;
  const atimeOf = (abs: string) => Math.floor(fs.statSync(abs).atimeMs / 1000);
  /** A file whose atime is older than its mtime: relatime would update it on a read. */
  function aged(root: string, rel: string): string {
    const abs = write(root, rel, "Subject: aged\n\nbody\n");
    fs.utimesSync(abs, OLD_ATIME, NEWER_MTIME);
    assert.equal(atimeOf(abs), OLD_ATIME);
    return abs;
  }

  /** Mount options of the file system holding dir (the longest mount point over it). */
  function mountOptions(dir: string): string[] {
    const real = fs.realpathSync(dir);
    let best = "";
    let options: string[] = [];
    for (const line of fs.readFileSync("/proc/self/mounts", "utf8").split("\n")) {
      const fields = line.split(" ");
      if (fields.length < 4) continue;
      const point = (fields[1] as string).replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(Number.parseInt(o, 8)),
      );
      const over = point === "/" || real === point || real.startsWith(`${point}/`);
      if (over && point.length >= best.length) {
        best = point;
        options = (fields[3] as string).split(",");
      }
    }
    return options;
  }

  test("reading a file through the batch leaves its atime as it was", async () => {
    const root = freshRoot();
    for (const req of [{ limit: 0 }, { limit: 4, mtime: true }, { limit: 4096, headOnly: true }]) {
      const sync = aged(root, "sync");
      const pooled = aged(root, "pooled");
      assert.equal(
        readBatchSync(root, { ...req, paths: ["sync"] })
          .file(0)
          ?.data.toString()
          .slice(0, 4),
        "Subj",
      );
      assert.equal(atimeOf(sync), OLD_ATIME, `readBatchSync ${JSON.stringify(req)}`);
      assert.equal(
        (await readBatch(root, { ...req, paths: ["pooled"] })).file(0)?.data.toString().slice(0, 4),
        "Subj",
      );
      assert.equal(atimeOf(pooled), OLD_ATIME, `readBatch ${JSON.stringify(req)}`);
    }
  });

  test("twin: a plain fs.readFileSync of such a file changes its atime", (t) => {
    const options = mountOptions(tmp);
    if (options.includes("noatime")) {
      t.skip(
        `${tmp} is on a file system mounted noatime (${options.join(",")}): no read changes an atime there`,
      );
      return;
    }
    const abs = aged(freshRoot(), "plain");
    assert.equal(fs.readFileSync(abs, "utf8"), "Subject: aged\n\nbody\n");
    assert.ok(
      atimeOf(abs) > OLD_ATIME,
      `atime ${atimeOf(abs)} after a plain read (mount options ${options})`,
    );
  });
});

describe("readBatch: many paths", () => {
  test("3,000 small files in one batch, some absent, each read right", async () => {
    const files: Record<string, string> = {};
    const paths: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const rel = `mess/${i % 23}/${100_000 + i}`;
      paths.push(rel);
      if (i % 97 !== 13) files[rel] = `${i}:${"x".repeat(i % 61)}\n`;
    }
    const root = freshRoot(files);
    // Interleaved, each file is a directory of its own; sorted, runs of ~130 files share one.
    for (const req of [
      { paths, limit: 0 },
      { paths, limit: 16, mtime: true },
      { paths: [...paths].sort(), limit: 0 },
    ]) {
      const got = await readBoth(root, req);
      assert.equal(got.length, 3000);
      got.forEach((o, i) => {
        const rel = req.paths[i] as string;
        const content = files[rel];
        if (content === undefined) {
          assert.equal(o, undefined, rel);
          return;
        }
        const whole = Buffer.from(content);
        assert.deepEqual(
          o,
          {
            data: req.limit ? whole.subarray(0, req.limit) : whole,
            size: whole.length,
            mtime: req.mtime ? MTIME : 0,
          },
          rel,
        );
      });
    }
  });
});

describe("readBatch: many directories", () => {
  test("300 files each in a directory of its own, every third directory missing: each file read or absent", async () => {
    const files: Record<string, string> = {};
    const paths: string[] = [];
    for (let i = 0; i < 300; i++) {
      paths.push(`d${i}/f`);
      if (i % 3 !== 0) files[`d${i}/f`] = `file ${i}\n`;
    }
    const root = freshRoot(files);
    const got = await readBoth(root, { paths, limit: 0, mtime: true });
    got.forEach((o, i) => {
      const content = files[paths[i] as string];
      assert.deepEqual(
        o,
        content === undefined
          ? undefined
          : { data: Buffer.from(content), size: content.length, mtime: MTIME },
        paths[i],
      );
    });
  });
});

describe("readBatch: many batches at once", () => {
  test("300 batches asked for together each get their own files, settled in the order asked", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 900; i++) files[`f/${i}`] = `file ${i}\n`;
    const root = freshRoot(files);
    const settled: number[] = [];
    const batches = Array.from({ length: 300 }, (_, b) => {
      const paths = [0, 1, 2].map((k) => `f/${b * 3 + k}`);
      return readBatch(root, { paths, limit: 0 }).then((batch) => {
        settled.push(b);
        return batch;
      });
    });
    const all = await Promise.all(batches);
    all.forEach((batch, b) => {
      for (let k = 0; k < 3; k++) {
        assert.equal(batch.file(k)?.data.toString(), `file ${b * 3 + k}\n`);
      }
    });
    // One reader thread takes them in the order asked: a scan's chunks come back in walk order.
    assert.deepEqual(
      settled,
      Array.from({ length: 300 }, (_, b) => b),
    );
    // Its twin, a batch failing among them (a missing root), fails alone.
    const failing = readBatch(path.join(root, "nowhere"), { paths: ["f/0"], limit: 0 });
    const fine = readBatch(root, { paths: ["f/1"], limit: 0 });
    await assert.rejects(failing, QueueAccessError);
    assert.equal((await fine).file(0)?.data.toString(), "file 1\n");
  });
});

describe("readBatch: the io_uring fast path", () => {
  const readCalls = () => Number(/syscr: (\d+)/.exec(fs.readFileSync("/proc/self/io", "utf8"))?.[1]);
  const readsOf = (read: () => FileBatch): number => {
    const before = readCalls();
    read();
    return readCalls() - before;
  };

  test("where the kernel has io_uring, 300 small files cost no read(2) call; twin: turned off, one read(2) each", (t) => {
    const kind = native.readerKind();
    if (kind !== "io_uring") return t.skip(`this kernel's reads: ${kind}`);
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`info/0/${1000 + i}`] = `F${i}@example.com\0`;
    const root = freshRoot(files);
    const req = { paths: Object.keys(files), limit: 0, mtime: true };
    const fast = readsOf(() => readBatchSync(root, req));
    const plain = readsOf(() => readBatchPlain(root, req));
    // Reading /proc/self/io itself is a read or two, the same in both.
    assert.ok(fast <= 4, `read(2) calls through io_uring: ${fast}`);
    assert.ok(plain >= 300, `read(2) calls with the plain calls: ${plain}`);
  });

  test("QMFLEET_IO_URING=0 turns it off for the process; twin: unset, the process reads as this kernel allows", () => {
    const kindIn = (env: NodeJS.ProcessEnv): string => {
      const native = JSON.stringify(fileURLToPath(new URL("./native.ts", import.meta.url)));
      const child = runSourceScript(`import { native } from ${native}; console.log(native.readerKind());`, {
        env,
      });
      assert.equal(child.status, 0, child.stderr);
      return child.stdout.trim();
    };
    const { QMFLEET_IO_URING: _, ...unset } = process.env;
    assert.equal(kindIn({ ...unset, QMFLEET_IO_URING: "0" }), "plain (io_uring turned off)");
    // Unset, only the kernel can say no, and the reason names the io_uring step that failed.
    const kind = kindIn(unset);
    assert.ok(kind === "io_uring" || /^plain \(io_uring[ _][^:]+: /.test(kind), kind);
  });
});
