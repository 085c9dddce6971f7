import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { renderTable } from "./harness.js";
import { benchDir, countLabel, ensureQueue } from "./queues.js";

let base: string;
before(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-bench-test-"));
});
after(() => fs.rmSync(base, { recursive: true, force: true }));

test("queue directories are named by count and seed", () => {
  assert.deepEqual([countLabel(100_000), countLabel(1_000_000), countLabel(2500)], ["100k", "1m", "2500"]);
  assert.equal(benchDir(100_000, 1, "/x"), "/x/qmfleet-bench-100k");
  assert.equal(benchDir(100_000, 7, "/x"), "/x/qmfleet-bench-100k-seed7");
});

test("a finished queue is reused; one without its summary, or of another seed, is built", () => {
  const logs: string[] = [];
  const log = (line: string) => logs.push(line);
  const first = ensureQueue(40, 3, log, base);
  assert.equal(first.messages, 40);
  assert.equal(first.seed, 3);
  const messFiles = fs
    .readdirSync(path.join(first.root, "mess"))
    .flatMap((n) => fs.readdirSync(path.join(first.root, "mess", n)));
  assert.equal(messFiles.length, 40);
  const built = logs.length;
  assert.ok(built > 0, "the first call builds and says so");
  // A marker inside the queue survives reuse.
  const marker = path.join(first.root, "..", "marker");
  fs.writeFileSync(marker, "x");
  assert.deepEqual(ensureQueue(40, 3, log, base), first);
  assert.equal(logs.length, built, "reuse builds nothing");
  assert.ok(fs.existsSync(marker));
  // An interrupted build (no summary.json) is thrown away and built again.
  fs.rmSync(path.join(path.dirname(first.root), "summary.json"));
  const again = ensureQueue(40, 3, log, base);
  assert.equal(again.messages, 40);
  assert.ok(logs.length > built);
  assert.ok(!fs.existsSync(marker));
  // Another seed lives in another directory.
  assert.notEqual(ensureQueue(40, 4, log, base).root, again.root);
});

test("the report table pads columns and keeps one row per line", () => {
  const table = renderTable([
    {
      operation: "search",
      qmfleet: "1.00 s",
      baseline: "0.50 s",
      ratio: "2.00x",
      goal: "<= 1.2x",
      met: "NO",
    },
  ]);
  const lines = table.split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0] as string, /^\| operation \| qmfleet \| baseline \| ratio \| goal {4}\| met\? \|$/);
  assert.match(
    lines[2] as string,
    /^\| search {4}\| 1\.00 s {2}\| 0\.50 s {3}\| 2\.00x \| <= 1\.2x \| NO {3}\|$/,
  );
});
