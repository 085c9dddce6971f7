import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { QueueBuilder, startQmailSend, waitUntil } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import type { Filter } from "./model.js";
import { retrySooner, sendNow } from "./retry.js";

let dir: string;
let root: string;
let q: QueueBuilder;
const OLD = Math.floor(Date.now() / 1000) - 3 * 86_400;
const TO_SLOW: Filter = {
  criteria: [{ kind: "recipientRegex", pattern: { source: "@slow\\.example$", caseInsensitive: true } }],
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "retry-"));
  root = path.join(dir, "queue");
  q = QueueBuilder.create(root, {});
});

afterEach(() => {
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const infoMtime = (rel: string) => Math.floor(fs.statSync(path.join(root, rel)).mtimeMs / 1000);

describe("retry sooner (-t) and send now (-a)", () => {
  it("sets info mtime to now for matching remote messages only, and tells qmail-send", async () => {
    const remote = q.add({ message: "x\n", birthTime: OLD, recipients: [{ address: "a@slow.example" }] });
    const local = q.add({
      message: "y\n",
      birthTime: OLD,
      recipients: [{ address: "b@slow.example", channel: "local" }],
    });
    const other = q.add({ message: "o\n", birthTime: OLD, recipients: [{ address: "e@fast.example" }] });
    const s = await startQmailSend(root);
    try {
      // Written after its start, so qmail-send has neither retired nor preprocessed them yet.
      const done = q.add({
        message: "z\n",
        birthTime: OLD,
        recipients: [{ address: "c@slow.example", done: true }],
      });
      const todo = q.add({
        message: "t\n",
        birthTime: OLD,
        state: "todo",
        recipients: [{ address: "d@slow.example" }],
      });
      // Its first attempts at start (3 recipients) are over: the next ones would be minutes away.
      await waitUntil(
        () => s.log().filter((l) => l.includes(": deferral: ")).length === 3,
        60_000,
        "first attempts",
      );
      const mark = s.log().length;
      const now = Math.floor(Date.now() / 1000);
      const r = await retrySooner(detectLayout(root), TO_SLOW, { stateDir: path.join(dir, "state"), now });
      assert.deepEqual(r, { matched: 4, changed: 1, signaled: true, pid: s.pid });
      assert.equal(infoMtime(remote.paths.info), now);
      for (const m of [local, done, other]) assert.equal(infoMtime(m.paths.info), OLD);
      assert.equal(infoMtime(todo.paths.todo), OLD);
      // ALRM: qmail-send retries at once.
      await s.waitForLog(new RegExp(`^starting delivery \\d+: msg ${remote.id} to remote a@slow.example$`), {
        from: mark,
      });
    } finally {
      await s.dispose();
    }
  });

  it("changes nothing in a dry run", async () => {
    const m = q.add({ message: "x\n", birthTime: OLD, recipients: [{ address: "a@slow.example" }] });
    const r = await retrySooner(detectLayout(root), TO_SLOW, {
      stateDir: path.join(dir, "state"),
      dryRun: true,
    });
    assert.deepEqual(r, { matched: 1, changed: 0, signaled: false, pid: 0 });
    assert.equal(infoMtime(m.paths.info), OLD);
  });

  it("send now signals qmail-send when it runs, and says so when it does not", async () => {
    assert.deepEqual(sendNow(detectLayout(root)), { signaled: false, pid: 0 });
    const s = await startQmailSend(root);
    try {
      assert.deepEqual(sendNow(detectLayout(root)), { signaled: true, pid: s.pid });
    } finally {
      await s.dispose();
    }
  });
});
