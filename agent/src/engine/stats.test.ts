import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { generateMixedQueue, QueueBuilder, rebuildRealQueue } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import { queueStats, renderQstat, StatsCache } from "./stats.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-stats-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => path.join(tmp, `q${n++}`, "queue");

test("the real queue: qmail-qstat's output byte for byte, and the counts behind it", async () => {
  const fx = rebuildRealQueue(freshRoot());
  const stats = await queueStats(detectLayout(fx.root), 1795839100);
  assert.equal(renderQstat(stats), fx.qmailQstat);
  assert.equal(stats.preprocessed, 12);
  assert.equal(stats.notPreprocessed, 2);
  assert.equal(stats.withLocal, 3);
  assert.equal(stats.withRemote, 11);
  assert.equal(stats.bouncing, 1);
  assert.equal(stats.beingWritten, 0);
  const bytes = fx.messages.reduce((s, m) => s + (m.files.mess?.length ?? 0), 0);
  assert.equal(stats.bytes, bytes);
  assert.equal(stats.oldestBirth, 1795839072);
  assert.equal(stats.oldestAgeSeconds, 28);
  assert.equal(stats.detailed, true);
});

test("an empty queue is zeros; a missing root is an error, not zeros", async () => {
  const root = freshRoot();
  QueueBuilder.create(root);
  const stats = await queueStats(detectLayout(root));
  assert.equal(renderQstat(stats), "messages in queue: 0\nmessages in queue but not yet preprocessed: 0\n");
  assert.equal(stats.oldestBirth, 0);
  const gone = freshRoot();
  QueueBuilder.create(gone);
  const layout = detectLayout(gone);
  fs.rmSync(path.dirname(gone), { recursive: true });
  await assert.rejects(queueStats(layout), /cannot read .*: ENOENT/);
});

test("a mixed queue: counts equal what was written, with details and counts only", async () => {
  const now = 1795839072;
  const s = generateMixedQueue(freshRoot(), { count: 400, seed: 5, split: 7, now });
  const layout = detectLayout(s.root);
  const stats = await queueStats(layout, now);
  assert.deepEqual(
    [
      stats.messagesInQueue,
      stats.notPreprocessed,
      stats.preprocessed,
      stats.withLocal,
      stats.withRemote,
      stats.bouncing,
    ],
    [s.messages, s.todo, s.preprocessed, s.withLocal, s.withRemote, s.bouncing],
  );
  assert.equal(stats.bytes, s.bytes);
  assert.equal(stats.oldestBirth, s.oldestBirth);
  const quick = await queueStats(layout, now, { detail: false });
  assert.equal(quick.messagesInQueue, s.messages);
  assert.equal(quick.bytes, 0);
  assert.equal(quick.detailed, false);
});

test("big-todo, being written, odd entries: qmail-qstat counts entries, the rest counts messages", async () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 5, bigTodo: true });
  q.add({ message: "x\n" });
  q.add({ message: "x\n", state: "todo" });
  q.add({ message: "x\n", state: "being-written" });
  q.addEntry("mess/1/123.bak", { kind: "file" });
  q.addEntry("info/1/.hidden", { kind: "file" });
  q.addEntry("info/2/777", { kind: "symlink", target: "/etc/passwd" });
  const stats = await queueStats(detectLayout(root));
  // find(1) sees 123.bak too: qmail-qstat would print 4.
  assert.equal(stats.messagesInQueue, 4);
  assert.equal(stats.notPreprocessed, 1, "todo/N split dirs are not messages");
  assert.equal(stats.preprocessed, 1, "neither .hidden nor a symlink is a message");
  assert.equal(stats.beingWritten, 1);
});

test("odd entries with details: all-digit names that are no plain safe integer count in bytes and ages, and stay right from a cache; entries below a directory in mess/N count as find(1) counts them", async () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 3 });
  q.add({ message: "Subject: a\n\nbody\n", birthTime: 1_700_000_500 });
  q.addEntry("mess/1/0123", { kind: "file", content: "12345" });
  q.addEntry("info/1/0123", { kind: "file", content: "Fx@y\0", mtime: 1_700_000_000 });
  q.addEntry("mess/2/12345678901234567", { kind: "file", content: "1234567" });
  q.addEntry("mess/2/lost/1", { kind: "file" });
  q.addEntry("mess/2/lost/deeper/2", { kind: "file" });
  q.close();
  const layout = detectLayout(root);
  const cache = new StatsCache(layout.root);
  for (const opts of [{ detail: true }, { cache }, { cache }]) {
    const stats = await queueStats(layout, 1_700_001_000, opts);
    // 1 message, 0123, 12345678901234567, lost, lost/1, lost/deeper, lost/deeper/2.
    assert.equal(stats.messagesInQueue, 7);
    assert.equal(stats.preprocessed, 2, "info/1/0123 is a message file");
    assert.equal(stats.bytes, 17 + 5 + 7);
    assert.equal(stats.oldestBirth, 1_700_000_000, "the odd info file is the oldest");
  }
  // Twin: without the odd entries, only the message's own numbers.
  for (const rel of ["mess/1/0123", "info/1/0123", "mess/2/12345678901234567", "mess/2/lost"])
    q.removeEntry(rel);
  for (const opts of [{ detail: true }, { cache }]) {
    const stats = await queueStats(layout, 1_700_001_000, opts);
    assert.deepEqual([stats.messagesInQueue, stats.preprocessed, stats.bytes], [1, 1, 17]);
    assert.equal(stats.oldestBirth, 1_700_000_500);
  }
});

test("a split dir that cannot be listed fails with its path", async () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 3 });
  q.add({ message: "x\n" });
  const layout = detectLayout(root);
  assert.equal((await queueStats(layout, 0)).messagesInQueue, 1);
  q.removeEntry("info/2");
  q.addEntry("info/2", { kind: "file" });
  await assert.rejects(queueStats(layout, 0), /cannot read .*info\/2: ENOTDIR/);
});

test("a StatsCache gives the numbers a fresh pass gives, the oldest exact after qmHandle -t", async () => {
  const now = 1795839072;
  const s = generateMixedQueue(freshRoot(), { count: 300, seed: 7, split: 5, now });
  const layout = detectLayout(s.root);
  const cache = new StatsCache(layout.root);
  const fresh = () => queueStats(layout, now, { detail: true });
  const cached = () => queueStats(layout, now, { cache });
  assert.deepEqual(await cached(), await fresh());
  assert.deepEqual(await cached(), await fresh(), "the second call, from the cache");
  // qmHandle -t on the oldest message: its info mtime becomes now, the next oldest is oldest.
  const infos = fs
    .readdirSync(path.join(s.root, "info"))
    .flatMap((n) =>
      fs.readdirSync(path.join(s.root, "info", n)).map((id) => path.join(s.root, "info", n, id)),
    );
  const byAge = infos.sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
  fs.utimesSync(byAge[0] as string, now, now);
  const second = Math.floor(fs.statSync(byAge[1] as string).mtimeMs / 1000);
  const afterTouch = await cached();
  assert.equal(afterTouch.oldestBirth, second);
  assert.deepEqual(afterTouch, await fresh());
  // A new message and a delivered one: new entries are read, gone ones dropped.
  const q = QueueBuilder.create(s.root, { split: 5 });
  q.add({ message: "Subject: new\n\nbody\n", birthTime: now - 10 });
  q.close();
  const gone = byAge[5] as string;
  const id = path.basename(gone);
  const n = path.basename(path.dirname(gone));
  for (const kind of ["local", "remote", "info", "mess"])
    fs.rmSync(path.join(s.root, kind, n, id), { force: true });
  fs.rmSync(path.join(s.root, "bounce", id), { force: true });
  assert.deepEqual(await cached(), await fresh());
});

test("a StatsCache trusts a preprocessed message's mess size until it is renewed", async () => {
  // What the cache does not see (StatsCache): a mess file of the same name with another size,
  // as after inode reuse between two calls. A fresh pass and a renewed cache see it.
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 3 });
  const m = q.add({ message: "Subject: a\n\nbody\n" });
  q.close();
  const layout = detectLayout(root);
  const cache = new StatsCache(layout.root);
  const first = await queueStats(layout, 0, { cache });
  assert.equal(first.bytes, 17);
  const mess = path.join(root, m.paths.mess);
  fs.appendFileSync(mess, "more body\n");
  assert.equal((await queueStats(layout, 0, { cache })).bytes, 17);
  assert.equal((await queueStats(layout, 0, { detail: true })).bytes, 27);
  const renewing = new StatsCache(layout.root, 0);
  await queueStats(layout, 0, { cache: renewing });
  fs.appendFileSync(mess, "x\n");
  assert.equal((await queueStats(layout, 0, { cache: renewing })).bytes, 29);
  await assert.rejects(
    queueStats(detectLayout(root), 0, { cache: new StatsCache("/elsewhere") }),
    /stats cache of \/elsewhere used for/,
  );
});
