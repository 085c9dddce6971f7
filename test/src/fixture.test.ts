import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { loadRealQueueFixture, rebuildRealQueue, sharedDir } from "./fixture.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-fixture-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the real queue is rebuilt file by file with new ids, bytes and mtimes intact", () => {
  const fixture = loadRealQueueFixture();
  const rebuilt = rebuildRealQueue(path.join(tmp, "queue"));
  assert.equal(rebuilt.messages.length, fixture.messages.length);
  for (const original of fixture.messages) {
    const m = rebuilt.byOriginalId.get(original.id);
    assert.ok(m, `message ${original.id} rebuilt`);
    assert.equal(
      fs.statSync(path.join(rebuilt.root, m.built.paths.mess), { bigint: true }).ino.toString(),
      m.id,
    );
    for (const [kind, file] of Object.entries(original.files)) {
      const rel = m.built.paths[kind as keyof typeof m.built.paths];
      const abs = path.join(rebuilt.root, rel);
      assert.deepEqual(fs.readFileSync(abs), Buffer.from(file.base64, "base64"), `${original.id} ${kind}`);
      assert.equal(fs.statSync(abs).mtimeMs, file.mtime * 1000, `${original.id} ${kind} mtime`);
      assert.equal((fs.statSync(abs).mode & 0o777).toString(8), file.mode.replace(/^0o/, ""));
    }
    if (original.qmailQread) {
      assert.ok(m.qmailQread?.includes(`  #${m.id}  `));
      assert.ok(!m.qmailQread?.includes(`#${original.id}`) || m.id === original.id);
    } else {
      assert.equal(m.qmailQread, undefined);
    }
  }
  assert.equal(
    fs.readFileSync(path.join(rebuilt.root, "..", "control", "virtualdomains"), "utf8"),
    "vdom.example:vp\n",
  );
});

test("QMFLEET_SHARED_DIR overrides where the fixture is looked for, with a clear error", () => {
  const saved = process.env.QMFLEET_SHARED_DIR;
  try {
    process.env.QMFLEET_SHARED_DIR = path.join(tmp, "nowhere");
    assert.throws(
      () => loadRealQueueFixture(),
      /cannot read the real queue fixture .*nowhere.*QMFLEET_SHARED_DIR/,
    );
    const copy = path.join(tmp, "shared-copy");
    fs.mkdirSync(path.join(copy, "fixtures"), { recursive: true });
    delete process.env.QMFLEET_SHARED_DIR;
    fs.copyFileSync(
      path.join(sharedDir(), "fixtures", "real-qmail-queue.json"),
      path.join(copy, "fixtures", "real-qmail-queue.json"),
    );
    process.env.QMFLEET_SHARED_DIR = copy;
    assert.equal(loadRealQueueFixture().split, 23);
  } finally {
    if (saved === undefined) delete process.env.QMFLEET_SHARED_DIR;
    else process.env.QMFLEET_SHARED_DIR = saved;
  }
});
