// queue_dirs.c's listDir and statIds, on real directories: what stats.ts builds on.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { QueueAccessError } from "./layout.js";
import { listDirectoryAsync, MessageNameSet, native, nativeFailure } from "./native.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-native-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function freshDir(): string {
  const dir = path.join(tmp, `d${n++}`);
  fs.mkdirSync(dir);
  return dir;
}

/** The errno name an addon failure carries, through nativeFailure. */
function codeOf(fn: () => unknown, where: string): string {
  try {
    fn();
  } catch (err) {
    const failure = nativeFailure("read", where, err);
    assert.ok(failure instanceof QueueAccessError, String(err));
    return failure.code;
  }
  assert.fail("it did not throw");
}

describe("listDir", () => {
  test("counts every entry; ids are the regular files named by safe integers, odd the other all-digit files, dirs the directories", () => {
    const dir = freshDir();
    for (const name of ["1", "0", "123456789012345", "1234567890123456", "0123", "12a", ".5", "x"])
      fs.writeFileSync(path.join(dir, name), name);
    fs.symlinkSync(path.join(dir, "1"), path.join(dir, "99"));
    fs.mkdirSync(path.join(dir, "7"));
    fs.mkdirSync(path.join(dir, "sub"));
    fs.symlinkSync(path.join(dir, "sub"), path.join(dir, "linkdir"));
    const l = native.listDir(dir);
    assert.ok(l);
    assert.equal(l.count, 12);
    assert.deepEqual(
      [...l.ids].sort((a, b) => a - b),
      [0, 1, 123456789012345],
    );
    assert.deepEqual(l.odd.sort(), ["0123", "1234567890123456"]);
    assert.deepEqual(l.dirs.sort(), ["7", "sub"], "a symlink to a directory is no directory");
  });

  test("an empty directory lists nothing; twin: a missing one is null", () => {
    const dir = freshDir();
    assert.deepEqual(native.listDir(dir), { count: 0, ids: new Float64Array(0), odd: [], dirs: [] });
    fs.rmdirSync(dir);
    assert.equal(native.listDir(dir), null);
  });

  test("a path that is a file fails with ENOTDIR; twin: the same path as a directory lists", () => {
    const dir = freshDir();
    const file = path.join(dir, "f");
    fs.writeFileSync(file, "x");
    assert.equal(
      codeOf(() => native.listDir(file), file),
      "ENOTDIR",
    );
    fs.rmSync(file);
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, "42"), "x");
    assert.deepEqual([...(native.listDir(file)?.ids ?? [])], [42]);
  });

  test("thousands of entries: every id once", () => {
    const dir = freshDir();
    const ids = Array.from({ length: 5000 }, (_, i) => 1_000_000 + i * 7);
    for (const id of ids) fs.writeFileSync(path.join(dir, String(id)), "");
    const l = native.listDir(dir);
    assert.equal(l?.count, ids.length);
    assert.deepEqual(
      [...(l?.ids ?? [])].sort((a, b) => a - b),
      ids,
    );
  });
});

describe("listDirAsync", () => {
  test("lists on the thread pool what listDir lists; a missing directory is null", async () => {
    const dir = freshDir();
    for (const name of ["5", "0123", "x"]) fs.writeFileSync(path.join(dir, name), name);
    fs.mkdirSync(path.join(dir, "sub"));
    assert.deepEqual(await native.listDirAsync(dir), native.listDir(dir));
    assert.deepEqual([...((await native.listDirAsync(dir))?.ids ?? [])], [5]);
    assert.equal(await native.listDirAsync(path.join(dir, "gone")), null);
  });

  test("a path that is a file rejects with ENOTDIR, through listDirectoryAsync as a QueueAccessError naming it; twin: a directory there lists", async () => {
    const dir = freshDir();
    const file = path.join(dir, "f");
    fs.writeFileSync(file, "x");
    await assert.rejects(listDirectoryAsync(file), (err) => {
      assert.ok(err instanceof QueueAccessError);
      assert.equal(err.code, "ENOTDIR");
      assert.equal(err.path, file);
      return true;
    });
    fs.rmSync(file);
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, "42"), "x");
    assert.deepEqual([...((await listDirectoryAsync(file))?.ids ?? [])], [42]);
  });
});

describe("statIds", () => {
  test("the lstat size and mtime (seconds) of each id, -1 and -1 for one that is absent", () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, "5"), "12345");
    fs.writeFileSync(path.join(dir, "123456789012345"), "");
    fs.utimesSync(path.join(dir, "5"), 1_700_000_000, 1_700_000_000.9);
    fs.utimesSync(path.join(dir, "123456789012345"), 1_600_000_000, 1_600_000_000);
    fs.symlinkSync("/etc/passwd-nowhere-long-name", path.join(dir, "8"));
    const got = native.statIds(dir, Float64Array.from([5, 6, 123456789012345, 8]));
    const link = fs.lstatSync(path.join(dir, "8"));
    assert.deepEqual(
      [...got],
      [5, 1_700_000_000, -1, -1, 0, 1_600_000_000, link.size, Math.floor(link.mtimeMs / 1000)],
    );
    assert.deepEqual([...native.statIds(dir, new Float64Array(0))], []);
  });

  test("a missing directory fails with ENOENT; twin: an existing one stats", () => {
    const dir = path.join(freshDir(), "missing");
    assert.equal(
      codeOf(() => native.statIds(dir, Float64Array.from([1])), dir),
      "ENOENT",
    );
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "1"), "ab");
    assert.equal(native.statIds(dir, Float64Array.from([1]))[0], 2);
  });

  test("a wrong argument is a TypeError naming what is expected", () => {
    const dir = freshDir();
    assert.throws(
      () => (native.statIds as (a: unknown, b: unknown) => unknown)(dir, [1, 2]),
      /statIds\(path, Float64Array\) expected/,
    );
    assert.throws(() => (native.listDir as (a: unknown) => unknown)(42), /the path must be a string/);
  });
});

describe("MessageNameSet", () => {
  test("holds a directory's message names: plain ones as numbers, odd ones (leading zero, 16 digits) as names", () => {
    const dir = freshDir();
    for (const name of ["7", "123456789012345", "1234567890123456", "0123", "12a"])
      fs.writeFileSync(path.join(dir, name), name);
    fs.mkdirSync(path.join(dir, "8"));
    const names = MessageNameSet.of(dir);
    for (const name of ["7", "123456789012345", "1234567890123456", "0123"]) assert.ok(names.has(name), name);
    assert.ok(names.hasPlain(7) && names.hasPlain(123456789012345));
    // Twins: names that are not there, though their numbers or spellings come close.
    for (const name of ["8", "123", "00123", "1234567890123457", "12a", "07"])
      assert.ok(!names.has(name), name);
    assert.ok(!names.hasPlain(123) && !names.hasPlain(8));
  });

  test("answers as a Set of the listing's numbers would, whatever their order and count (searched by halves)", () => {
    const LARGEST = 999_999_999_999_999;
    let seed = 7;
    const random = (below: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % below;
    };
    for (const count of [0, 1, 2, 3, 8, 255, 1000]) {
      // Listed in no order, with gaps, up to 15 digits (what queue_dirs.c lists as ids).
      const ids = Array.from({ length: count }, () =>
        random(3) === 0 ? LARGEST - random(50) : random(5000) * 2 + 1,
      );
      const names = new MessageNameSet({ count, ids: Float64Array.from(ids), odd: [], dirs: [] });
      const expected = new Set(ids);
      // Every listed id and its neighbours, the ends of the range, and ids far off either end.
      const probes = [0, 1, 10001, LARGEST, LARGEST + 1, ...ids.flatMap((id) => [id - 1, id, id + 1])];
      for (const id of probes) {
        assert.equal(names.hasPlain(id), expected.has(id), `${count} ids: ${id}`);
        assert.equal(names.has(String(id)), expected.has(id), `${count} ids: "${id}"`);
      }
    }
  });

  test("a missing directory holds no name; twin: the same directory with one", () => {
    const dir = path.join(freshDir(), "gone");
    assert.ok(!MessageNameSet.of(dir).has("5"));
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "5"), "");
    assert.ok(MessageNameSet.of(dir).has("5"));
  });
});

describe("splitDirMessages", () => {
  const LARGEST = 999_999_999_999_999;
  /** What the walk asks of it, in JavaScript: the ids of split dir n in order, and their flags. */
  function expected(ids: number[], split: number, n: number, sets: Set<number>[]): [number[], number[]] {
    const kept = ids.filter((id) => id % split === n);
    return [kept, kept.map((id) => sets.reduce((flags, set, k) => flags | (set.has(id) ? 1 << k : 0), 0))];
  }

  test("keeps info/n's ids of split dir n in readdir order, each flagged by the sorted sets that hold it", () => {
    let seed = 11;
    const random = (below: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % below;
    };
    for (const [count, split] of [
      [0, 23],
      [1, 1],
      [300, 23],
      [1000, 7],
    ] as const) {
      const ids = Array.from({ length: count }, () =>
        random(4) === 0 ? LARGEST - random(500) : random(20000),
      );
      // Each set holds about half the listed ids and some that are not listed.
      const sets = [0, 1, 2].map(
        () => new Set([...ids.filter(() => random(2) === 0), random(20000), LARGEST]),
      );
      for (let n = 0; n < split; n += Math.max(1, Math.floor(split / 3))) {
        const got = native.splitDirMessages(
          Float64Array.from(ids),
          split,
          n,
          ...(sets.map((set) => Float64Array.from(set).sort()) as [Float64Array, Float64Array, Float64Array]),
        );
        const [keptIds, keptFlags] = expected(ids, split, n, sets);
        assert.deepEqual([...got.ids], keptIds, `${count} ids, split ${split}, dir ${n}`);
        assert.deepEqual([...got.flags], keptFlags, `${count} ids, split ${split}, dir ${n}: flags`);
      }
    }
  });

  test("leaves out what is no plain id; twin: the same ids plain", () => {
    const none = new Float64Array(0);
    const odd = Float64Array.from([-1, 2.5, Number.NaN, 2 ** 53 + 2, Number.POSITIVE_INFINITY]);
    assert.deepEqual([...native.splitDirMessages(odd, 1, 0, none, none, none).ids], []);
    const plain = Float64Array.from([1, 2, 2 ** 53 - 1]);
    assert.deepEqual([...native.splitDirMessages(plain, 1, 0, none, none, none).ids], [1, 2, 2 ** 53 - 1]);
  });

  test("a wrong argument is a TypeError naming what is expected; twin: the right ones", () => {
    const ids = Float64Array.from([4]);
    const call = native.splitDirMessages as (...args: unknown[]) => unknown;
    for (const args of [
      [[4], 2, 0, ids, ids, ids],
      [ids, 0, 0, ids, ids, ids],
      [ids, 2, 0, ids, new Uint8Array(1), ids],
      [ids, 2, 0, ids, ids],
    ])
      assert.throws(
        () => call(...args),
        /splitDirMessages\(ids, split > 0, n, local, remote, bouncing: Float64Array\) expected/,
      );
    assert.deepEqual(call(ids, 2, 0, ids, ids, ids), {
      ids: Float64Array.from([4]),
      flags: Uint8Array.from([7]),
    });
  });
});
