import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { QueueBuilder } from "@qmfleet/test";
import {
  assertConsistentSplit,
  detectLayout,
  isMessageName,
  messagePaths,
  QueueAccessError,
} from "./layout.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-layout-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => path.join(tmp, `q${n++}`, "queue");

test("split is detected from mess/: 23, 7, 1; big-todo from todo/0", () => {
  for (const [split, bigTodo] of [
    [23, false],
    [7, true],
    [1, false],
  ] as const) {
    const root = freshRoot();
    QueueBuilder.create(root, { split, bigTodo });
    const layout = detectLayout(root);
    assert.equal(layout.split, split);
    assert.equal(layout.bigTodo, bigTodo);
    assert.equal(layout.splitConsistent, true);
    assert.deepEqual(layout.splitProblems, []);
    assert.doesNotThrow(() => assertConsistentSplit(layout));
  }
});

test("disagreeing split dirs are reported, and refused for changes", () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 23 });
  q.removeEntry("info/22");
  q.addEntry("remote/23", { kind: "dir" });
  const layout = detectLayout(root);
  assert.equal(layout.split, 23);
  assert.equal(layout.splitConsistent, false);
  assert.match(layout.splitProblems.join("\n"), /info\/ has split dirs .*missing 22/);
  assert.match(layout.splitProblems.join("\n"), /remote\/ has split dirs .*extra 23/);
  assert.throws(() => assertConsistentSplit(layout), /refusing to change .*split directories disagree/);
});

test("a gap in mess/ is a disagreement too", () => {
  const root = freshRoot();
  const q = QueueBuilder.create(root, { split: 5 });
  q.removeEntry("mess/2");
  const layout = detectLayout(root);
  assert.equal(layout.split, 5);
  assert.match(layout.splitProblems.join(), /mess\/ has split dirs 0,1,3,4 \(missing 2/);
});

test("a missing root, a file, or a directory without mess/ is an error naming the path and the fix", () => {
  const missing = path.join(tmp, "does-not-exist");
  assert.throws(
    () => detectLayout(missing),
    (err: unknown) =>
      err instanceof QueueAccessError &&
      err.code === "ENOENT" &&
      err.message.includes(missing) &&
      /check the queue root/.test(err.message),
  );
  const file = path.join(tmp, "a-file");
  fs.writeFileSync(file, "");
  assert.throws(() => detectLayout(file), /not a directory/);
  const empty = fs.mkdtempSync(path.join(tmp, "empty-"));
  assert.throws(() => detectLayout(empty), /mess\/ has no split directories|cannot read .*mess: ENOENT/);
  const root = freshRoot();
  QueueBuilder.create(root);
  assert.equal(detectLayout(root).root, root);
});

test("an unreadable root says to run as root or qmails", () => {
  const root = freshRoot();
  QueueBuilder.create(root);
  fs.chmodSync(root, 0o700);
  // Root reads everything: ask a process running as nobody, the way a misconfigured agent runs.
  const script = `
    const { detectLayout } = await import(${JSON.stringify(new URL("./layout.ts", import.meta.url).href)});
    try { detectLayout(${JSON.stringify(root)}); console.log("read"); } catch (e) { console.log(e.message); }
  `;
  fs.chmodSync(tmp, 0o755);
  fs.chmodSync(path.dirname(root), 0o755);
  const run = (args: string[]) =>
    execFileSync(
      "setpriv",
      [...args, process.execPath, "--import", "tsx", "--input-type=module", "-e", script],
      {
        encoding: "utf8",
        cwd: path.resolve(new URL(".", import.meta.url).pathname, "../.."),
      },
    ).trim();
  assert.match(
    run(["--reuid=65534", "--regid=65534", "--clear-groups"]),
    /cannot read queue root .*: EACCES \(run the agent as root or as qmails\)/,
  );
  assert.equal(run(["--reuid=0", "--regid=0", "--clear-groups"]), "read");
});

test("message paths: split dirs, flat or big-todo, flat bounce, ids beyond 2^53", () => {
  const flat = { root: "/q", split: 23, bigTodo: false };
  assert.deepEqual(messagePaths(flat, "1491085"), {
    mess: "mess/18/1491085",
    info: "info/18/1491085",
    local: "local/18/1491085",
    remote: "remote/18/1491085",
    todo: "todo/1491085",
    intd: "intd/1491085",
    bounce: "bounce/1491085",
  });
  const big = { root: "/q", split: 7, bigTodo: true };
  assert.equal(messagePaths(big, "15").todo, "todo/1/15");
  assert.equal(messagePaths(big, "15").intd, "intd/1/15");
  assert.equal(messagePaths(big, "15").bounce, "bounce/15");
  // 2^64 - 1 = 18446744073709551615; mod 23 = 15 (exact, not via a rounded double).
  assert.equal(
    messagePaths(flat, "18446744073709551615").mess,
    `mess/${18446744073709551615n % 23n}/18446744073709551615`,
  );
});

test("only purely numeric names are messages", () => {
  for (const name of ["1", "1491085", "18446744073709551615"]) assert.ok(isMessageName(name), name);
  for (const name of ["", "123.bak", ".123", "lost+found", "12a", "-1", " 1"])
    assert.ok(!isMessageName(name), name);
});
