import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { generateMixedQueue } from "./mixed-queue.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-mixed-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

function contentHashes(root: string): string[] {
  return walk(path.join(root, "mess"))
    .map((f) => createHash("sha256").update(fs.readFileSync(f)).digest("hex"))
    .sort();
}

test("the mixed queue matches its summary and is the same for the same seed", () => {
  const now = 1795839072;
  const a = generateMixedQueue(path.join(tmp, "a", "queue"), { count: 600, seed: 42, split: 7, now });
  const b = generateMixedQueue(path.join(tmp, "b", "queue"), { count: 600, seed: 42, split: 7, now });
  const c = generateMixedQueue(path.join(tmp, "c", "queue"), { count: 600, seed: 43, split: 7, now });
  assert.equal(walk(path.join(a.root, "mess")).length, 600);
  assert.equal(walk(path.join(a.root, "todo")).length, a.todo);
  assert.equal(walk(path.join(a.root, "info")).length, a.preprocessed);
  assert.equal(walk(path.join(a.root, "local")).length, a.withLocal);
  assert.equal(walk(path.join(a.root, "remote")).length, a.withRemote);
  assert.equal(fs.readdirSync(path.join(a.root, "bounce")).length, a.bouncing);
  const bytes = walk(path.join(a.root, "mess")).reduce((s, f) => s + fs.statSync(f).size, 0);
  assert.equal(bytes, a.bytes);
  assert.ok(a.storm > 120 && a.storm < 240, `about 30% bounce storm, got ${a.storm}`);
  assert.ok(a.todo > 0 && a.bouncing > 0 && a.withLocal > 0);
  assert.deepEqual(contentHashes(a.root), contentHashes(b.root));
  assert.notDeepEqual(contentHashes(a.root), contentHashes(c.root));
  assert.equal(
    fs.readFileSync(path.join(a.root, "..", "control", "virtualdomains"), "utf8"),
    "vdom.example:vp\n",
  );
});
