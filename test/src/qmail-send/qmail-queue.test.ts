// The test qmail-queue injects the way qmail-queue.c does: a new id (the mess inode), its own
// Received line above the message, intd -> todo, and a pull on lock/trigger that a listening
// qmail-send answers by preprocessing the message.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { QueueBuilder } from "../queue-builder.js";
import { startQmailSend } from "./control.js";
import { installQmailQueue } from "./qmail-queue-script.js";

let dir: string;
let root: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmail-queue-test-"));
  root = path.join(dir, "queue");
  QueueBuilder.create(root, {});
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs qmail-queue with the message and envelope in files on fd 0 and fd 1. */
function inject(message: string, envelope: string): { status: number | null; id?: string } {
  const qq = installQmailQueue(root, dir);
  fs.writeFileSync(path.join(dir, "m"), message);
  fs.writeFileSync(path.join(dir, "e"), envelope);
  const fd0 = fs.openSync(path.join(dir, "m"), "r");
  const fd1 = fs.openSync(path.join(dir, "e"), "r");
  try {
    const r = spawnSync(qq, [], { stdio: [fd0, fd1, "inherit"] });
    return { status: r.status };
  } finally {
    fs.closeSync(fd0);
    fs.closeSync(fd1);
  }
}

const todoIds = () => fs.readdirSync(path.join(root, "todo"));

describe("test qmail-queue", () => {
  it("writes mess (Received line + message), intd and todo under the mess inode", () => {
    const r = inject("Subject: back\n\nhello\n", "Fa@src.example\0Tx@far.example\0Ty@far.example\0\0");
    assert.equal(r.status, 0);
    const [id] = todoIds();
    assert.ok(id);
    const mess = path.join(root, "mess", String(BigInt(id) % 23n), id);
    assert.equal(fs.statSync(mess).ino.toString(), id);
    const text = fs.readFileSync(mess, "utf8");
    assert.match(
      text,
      /^Received: \(qmail \d+ invoked by uid 0\); \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d -0000\n/,
    );
    assert.equal(text.slice(text.indexOf("\n") + 1), "Subject: back\n\nhello\n");
    const envelope = fs.readFileSync(path.join(root, "todo", id), "latin1");
    assert.match(envelope, /^u0\0p\d+\0Fa@src\.example\0Tx@far\.example\0Ty@far\.example\0$/);
    assert.equal(fs.statSync(path.join(root, "intd", id)).ino, fs.statSync(path.join(root, "todo", id)).ino);
    assert.deepEqual(fs.readdirSync(path.join(root, "pid")), []);
  });

  it("refuses an envelope without its final empty record (exit 91), and writes no todo", () => {
    const r = inject("x\n", "Fa@src.example\0Tx@far.example\0");
    assert.equal(r.status, 91);
    assert.deepEqual(todoIds(), []);
  });

  it("pulls the trigger: a running qmail-send preprocesses the message at once", async () => {
    const qs = await startQmailSend(root);
    try {
      const mark = qs.log().length;
      assert.equal(inject("Subject: t\n\nx\n", "F\0Tz@far.example\0\0").status, 0);
      const line = await qs.waitForLog(/^info msg \d+: bytes \d+ from <> qp \d+ uid 0$/, { from: mark });
      const id = line.split(" ")[2]?.replace(":", "");
      assert.ok(id);
      assert.deepEqual(
        fs.readFileSync(path.join(root, "remote", String(BigInt(id) % 23n), id), "latin1"),
        "Tz@far.example\0",
      );
    } finally {
      await qs.dispose();
    }
  });
});
