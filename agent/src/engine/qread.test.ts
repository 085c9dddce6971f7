import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { QueueBuilder, rebuildRealQueue } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import { qmailQread, qreadDate, renderQreadBlock } from "./qread.js";
import { scanQueueSync } from "./scan.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-qread-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => path.join(tmp, `q${n++}`, "queue");

async function collect(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const block of qmailQread(detectLayout(root))) out.push(block);
  return out;
}

test("the real queue: every block equals what the real qmail-qread printed", async () => {
  const fx = rebuildRealQueue(freshRoot());
  const blocks = await collect(fx.root);
  const expected = fx.messages.filter((m) => m.qmailQread !== undefined);
  assert.equal(blocks.length, expected.length, "todo messages are not listed");
  for (const m of expected) {
    const mine = blocks.find((b) => b.includes(`  #${m.id}  `));
    assert.equal(mine, m.qmailQread, `message ${m.originalId}`);
  }
});

test("blocks come in qmail-qread's order: info/0 .. info/<split-1>", async () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 7 });
  for (let i = 0; i < 30; i++) q.add({ message: "x\n" });
  const ids = (await collect(root)).map((b) => /#(\d+) /.exec(b)?.[1] as string);
  const dirs = ids.map((id) => Number(id) % 7);
  assert.deepEqual(
    dirs,
    [...dirs].sort((a, b) => a - b),
  );
  assert.equal(ids.length, 30);
});

test("bytes outside 32..126 print as _, one per byte; done records get '  done'", () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root);
  q.add({
    message: "x\n",
    sender: "山@x",
    birthTime: 1795839072,
    raw: { local: Buffer.from([0x44, 0x61, 0xfc, 0x40, 0x78, 0, 0x54, 0x62, 0x09, 0x40, 0x78, 0]) },
  });
  const [c] = [...scanQueueSync(detectLayout(root))];
  assert.ok(c);
  assert.equal(
    renderQreadBlock(c.message),
    `28 Nov 2026 04:11:12 GMT  #${c.message.id}  2  <___@x> \n  done\tlocal\ta_@x\n\tlocal\tb_@x\n\tremote\trcpt@example.net\n`,
  );
});

test("dates: day not padded, time padded, UTC", () => {
  assert.equal(qreadDate(1795839072), "28 Nov 2026 04:11:12");
  assert.equal(qreadDate(Date.UTC(2027, 0, 5, 3, 4, 5) / 1000), "5 Jan 2027 03:04:05");
});
