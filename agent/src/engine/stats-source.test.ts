import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { generateMixedQueue, QueueBuilder } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import { queueStats } from "./stats.js";
import { QueueStatsSource } from "./stats-source.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-stats-source-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("calls made together share one answer, equal to an uncached pass; a later call sees changes", async () => {
  const now = 1795839072;
  const s = generateMixedQueue(path.join(tmp, "mixed", "queue"), { count: 300, seed: 9, split: 5, now });
  const fresh = await queueStats(detectLayout(s.root), now);
  const source = new QueueStatsSource(s.root);
  const [a, b] = await Promise.all([source.get(now), source.get(now + 60)]);
  assert.deepEqual(a, fresh);
  assert.deepEqual(b, { ...fresh, oldestAgeSeconds: fresh.oldestAgeSeconds + 60 }, "its own age");

  const q = QueueBuilder.create(s.root, { split: 5, now });
  q.add({ message: "Subject: new\n\nx\n", sender: "a@b.example", recipients: [{ address: "c@d.example" }] });
  q.close();
  const later = await source.get(now);
  assert.equal(later.messagesInQueue, fresh.messagesInQueue + 1);
  assert.deepEqual(later, await queueStats(detectLayout(s.root), now));
});

test("an unreadable queue is an error for that call, and the next call tries again", async () => {
  const root = path.join(tmp, "moved", "queue");
  QueueBuilder.create(root).close();
  const aside = `${root}.aside`;
  fs.renameSync(root, aside);
  const source = new QueueStatsSource(root);
  await assert.rejects(source.get(), new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  fs.renameSync(aside, root);
  assert.equal((await source.get()).messagesInQueue, 0);
});
