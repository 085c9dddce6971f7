import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { QueueBuilder, rebuildRealQueue } from "@qmfleet/test";
import { checkQueue, type QueueProblem } from "./check.js";
import { detectLayout } from "./layout.js";
import { WHOLE_FILE_MAX } from "./queue-file.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-check-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => path.join(tmp, `q${n++}`, "queue");

async function problems(root: string): Promise<QueueProblem[]> {
  const out: QueueProblem[] = [];
  for await (const p of checkQueue(detectLayout(root))) out.push(p);
  return out;
}

test("a healthy queue (the real one) has no problems", async () => {
  const fx = rebuildRealQueue(freshRoot());
  assert.deepEqual(await problems(fx.root), []);
});

test("every kind of damage is found, with the path and id concerned", async () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 5 });
  const healthy = q.add({ message: "x\n" });
  const orphanInfo = q.add({ message: "x\n", omit: ["mess"] });
  const orphanMess = q.add({ message: "x\n", omit: ["info", "remote"] });
  const orphanBounce = q.add({ message: "x\n", omit: ["mess", "info", "remote"], bounce: "b\n" });
  const renamed = q.add({ message: "x\n", name: true });
  const wrong = q.add({ message: "x\n", wrongSplit: ["remote"] });
  const writing = q.add({ message: "x\n", state: "being-written" });
  const badInfo = q.add({ message: "x\n", raw: { info: Buffer.from("Fno-nul") } });
  const badRemote = q.add({ message: "x\n", raw: { remote: Buffer.from("Tr@x\0Zodd\0") } });
  q.addEntry("mess/1/123.bak", { kind: "file" });
  q.addEntry("info/.hidden", { kind: "file" });
  q.addEntry("mess/lost+found", { kind: "dir" });
  q.addEntry("info/2/777", { kind: "symlink", target: "/etc/passwd" });
  q.removeEntry("local/4");
  const found = await problems(root);
  const has = (kind: string, id: string, pathPart = "") =>
    assert.ok(
      found.some((p) => p.kind === kind && p.id === id && p.path.includes(pathPart)),
      `${kind} ${id} ${pathPart} in ${JSON.stringify(found, null, 1)}`,
    );
  has("orphan_info", orphanInfo.id, orphanInfo.paths.info);
  has("orphan_mess", orphanMess.id, orphanMess.paths.mess);
  has("orphan_bounce", orphanBounce.id, `bounce/${orphanBounce.id}`);
  has("name_not_inode", renamed.id, renamed.paths.mess);
  has("wrong_split_dir", wrong.id, `remote/${(Number(wrong.id) + 1) % 5}/`);
  has("being_written", writing.id, writing.paths.intd);
  has("malformed_info", badInfo.id, badInfo.paths.info);
  has("malformed_recipients", badRemote.id, badRemote.paths.remote);
  has("odd_entry", "", "mess/1/123.bak");
  has("odd_entry", "", "info/.hidden");
  has("odd_entry", "", "mess/lost+found");
  has("symlink", "", "info/2/777");
  assert.ok(found.some((p) => p.kind === "split_mismatch" && /local\/ .*missing 4/.test(p.detail)));
  assert.ok(!found.some((p) => p.id === healthy.id), "the healthy message is not reported");
  assert.equal(fs.lstatSync(path.join(root, "info/2/777")).isSymbolicLink(), true, "nothing removed");
  q.close();
});

test("an envelope file larger than any envelope is reported unread, and the check goes on; twin: one of exactly the cap is parsed", async () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 3 });
  const huge = q.add({ message: "x\n" });
  const atCap = q.add({ message: "x\n" });
  const badInfo = q.add({ message: "x\n", raw: { info: Buffer.from("Fno-nul") } });
  fs.truncateSync(path.join(root, huge.paths.remote), WHOLE_FILE_MAX + 1);
  // One well-formed T record of exactly the cap: read and parsed, nothing to report.
  const record = Buffer.alloc(WHOLE_FILE_MAX, "a");
  record.write("T", 0);
  record.write("@example.com\0", WHOLE_FILE_MAX - 13);
  fs.writeFileSync(path.join(root, atCap.paths.remote), record);
  const found = await problems(root);
  assert.deepEqual(
    found.filter((p) => p.id === huge.id),
    [
      {
        kind: "malformed_recipients",
        path: huge.paths.remote,
        id: huge.id,
        detail: `${huge.paths.remote}: larger than any envelope file (64 MiB), left unread`,
      },
    ],
  );
  assert.deepEqual(
    found.filter((p) => p.id === atCap.id),
    [],
  );
  assert.ok(found.some((p) => p.kind === "malformed_info" && p.id === badInfo.id));
  q.close();
});
