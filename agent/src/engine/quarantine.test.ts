import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { type BuiltMessage, installQmailQueue, QueueBuilder } from "@qmfleet/test";
import type { Recipient } from "./model.js";
import { defaultQuarantineDir, Quarantine, QuarantineRefusedError } from "./quarantine.js";

let dir: string;
let root: string;
let q: QueueBuilder;
let quarantine: Quarantine;

const MESSAGE =
  "From: a@src.example\nSubject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\n\nbody \x00 with a NUL\r\n";
const RECIPIENTS: Recipient[] = [
  { channel: "local", address: "user@vdom.example", stored: "vp-user@vdom.example", done: false },
  { channel: "remote", address: "far@remote.example", stored: "far@remote.example", done: false },
  { channel: "remote", address: "done@remote.example", stored: "done@remote.example", done: true },
];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "quarantine-"));
  root = path.join(dir, "queue");
  q = QueueBuilder.create(root, { virtualDomains: { "vdom.example": "vp" } });
  quarantine = new Quarantine(defaultQuarantineDir(root));
});

afterEach(() => {
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function queued(): BuiltMessage {
  return q.add({
    message: MESSAGE,
    sender: "a@src.example",
    recipients: RECIPIENTS.map((r) => ({
      address: r.address,
      stored: r.stored,
      channel: r.channel,
      done: r.done,
    })),
  });
}

function quarantined(m: BuiltMessage) {
  const messPath = path.join(root, m.paths.mess);
  const fd = fs.openSync(messPath, "r");
  try {
    quarantine.prepare(root);
    return quarantine.put(messPath, fd, {
      originalId: m.id,
      fingerprint: "fp",
      sender: "a@src.example",
      recipients: RECIPIENTS,
      birthTime: 1_700_000_000,
      planId: "plan-1",
      reason: "spam run",
      size: Buffer.byteLength(MESSAGE),
      subject: "こんにちは",
      queueRoot: root,
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** The one message qmail-queue left in todo/: its mess and todo bytes. */
function injected(): { id: string; mess: Buffer; todo: string } {
  const ids = fs.readdirSync(path.join(root, "todo"));
  assert.equal(ids.length, 1);
  const id = ids[0] ?? "";
  return {
    id,
    mess: fs.readFileSync(path.join(root, "mess", String(BigInt(id) % 23n), id)),
    todo: fs.readFileSync(path.join(root, "todo", id), "latin1"),
  };
}

describe("quarantine", () => {
  it("hard-links the message (no copy) beside its envelope, outside the queue", () => {
    const m = queued();
    const e = quarantined(m);
    const link = path.join(quarantine.dir, e.quarantineId, "mess");
    assert.equal(fs.statSync(link).ino, fs.statSync(path.join(root, m.paths.mess)).ino);
    assert.equal(fs.statSync(link).nlink, 2);
    assert.equal(path.dirname(quarantine.dir), path.dirname(root), "beside the queue, not in it");
    assert.deepEqual([...quarantine.list()], [e]);
    assert.equal(quarantine.get(e.quarantineId).subject, "こんにちは");
    assert.match(e.quarantineId, new RegExp(`^\\d{8}T\\d{6}Z-${m.id}-[0-9a-f]{8}$`));
  });

  it("keeps the data after qmail-clean's unlink, and restores it through qmail-queue with a new id", async () => {
    const m = queued();
    const e = quarantined(m);
    for (const rel of m.written) fs.unlinkSync(path.join(root, rel)); // retired by qmail-send
    const r = await quarantine.restore(e.quarantineId, { qmailQueue: installQmailQueue(root, dir) });
    assert.deepEqual(r, { quarantineId: e.quarantineId, ok: true });
    const back = injected();
    assert.notEqual(back.id, m.id);
    const nl = back.mess.indexOf(0x0a);
    assert.match(back.mess.subarray(0, nl).toString(), /^Received: \(qmail \d+ invoked by uid 0\);/);
    assert.deepEqual(back.mess.subarray(nl + 1), Buffer.from(MESSAGE), "the message itself, byte for byte");
    // Recipients as the sender wrote them (qmail-send adds the vp- prefix again), done ones left out.
    assert.match(back.todo, /^u0\0p\d+\0Fa@src\.example\0Tuser@vdom\.example\0Tfar@remote\.example\0$/);
    assert.deepEqual([...quarantine.list()], [], "a restored message leaves the quarantine");
  });

  it("restores to every recipient when asked, the done ones too", async () => {
    const e = quarantined(queued());
    await quarantine.restore(e.quarantineId, {
      qmailQueue: installQmailQueue(root, dir),
      allRecipients: true,
    });
    assert.match(injected().todo, /Tdone@remote\.example\0$/);
  });

  it("reports a qmail-queue failure with its meaning and keeps the message", async () => {
    const e = quarantined(queued());
    const failing = path.join(dir, "qmail-queue-full");
    fs.writeFileSync(failing, "#!/bin/sh\nexit 53\n", { mode: 0o755 });
    const r = await quarantine.restore(e.quarantineId, { qmailQueue: failing });
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /exited 53: write error; e\.g\., disk full; the message stays in quarantine/);
    assert.equal([...quarantine.list()].length, 1);
  });

  it("has nothing to restore when every recipient was done, unless all recipients are asked for", async () => {
    const m = q.add({ message: "x\n", recipients: [{ address: "d@x.example", done: true }] });
    const fd = fs.openSync(path.join(root, m.paths.mess), "r");
    quarantine.prepare(root);
    const e = quarantine.put(path.join(root, m.paths.mess), fd, {
      originalId: m.id,
      fingerprint: "fp",
      sender: "",
      recipients: [{ channel: "remote", address: "d@x.example", stored: "d@x.example", done: true }],
      birthTime: 0,
      planId: "p",
      reason: "",
      size: 2,
      subject: "",
      queueRoot: root,
    });
    fs.closeSync(fd);
    const qq = installQmailQueue(root, dir);
    assert.match(
      (await quarantine.restore(e.quarantineId, { qmailQueue: qq })).error ?? "",
      /nothing to restore/,
    );
    assert.equal(
      (await quarantine.restore(e.quarantineId, { qmailQueue: qq, allRecipients: true })).ok,
      true,
    );
    assert.match(injected().todo, /\0F\0Td@x\.example\0$/, "the null sender <> is kept");
  });

  it("refuses a directory on another file system (no hard link can reach it)", () => {
    const shm = fs.mkdtempSync("/dev/shm/quarantine-");
    try {
      assert.notEqual(fs.statSync(shm).dev, fs.statSync(root).dev, "/dev/shm is another file system here");
      assert.throws(() => new Quarantine(shm).prepare(root), QuarantineRefusedError);
      quarantine.prepare(root); // the default, beside the queue, is accepted
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  it("refuses when the file system has less free space than required", () => {
    const s = fs.statfsSync(root);
    const free = (100 * s.bavail) / s.blocks;
    assert.throws(
      () => new Quarantine(quarantine.dir, { minFreePercent: free + 1 }).prepare(root),
      /refusing to quarantine: .* only [\d.]+% space free .* no-quarantine/,
    );
    new Quarantine(quarantine.dir, { minFreePercent: Math.max(0, free - 1) }).prepare(root);
  });

  it("expires entries older than the retention, and only those", () => {
    const e = quarantined(queued());
    assert.deepEqual(quarantine.expire(1), []);
    assert.deepEqual(quarantine.expire(1, Date.now() + 2 * 86_400_000), [e.quarantineId]);
    assert.deepEqual([...quarantine.list()], []);
  });

  it("never takes a path for an id", () => {
    assert.throws(() => quarantine.get("../../etc"), /not a quarantine id/);
    assert.throws(() => quarantine.remove("../queue"), /not a quarantine id/);
  });
});
