import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { QueueBuilder } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import type { Filter } from "./model.js";
import {
  claimPlan,
  createPlan,
  PlanError,
  type PlanSummary,
  queueIdentity,
  removeExpiredPlans,
} from "./plan.js";

let dir: string;
let root: string;
let stateDir: string;
let q: QueueBuilder;

const FROM_SPAM: Filter = { criteria: [{ kind: "senderExact", sender: "spam@bad.example" }] };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
  root = path.join(dir, "queue");
  stateDir = path.join(dir, "state");
  q = QueueBuilder.create(root, {});
});

afterEach(() => {
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function plan(
  filter: Filter = FROM_SPAM,
  over: Partial<Parameters<typeof createPlan>[2]> = {},
): Promise<PlanSummary> {
  return createPlan(detectLayout(root), filter, {
    stateDir,
    queueId: queueIdentity(root),
    mode: "live",
    quarantine: true,
    reason: "test",
    who: "tester",
    ...over,
  });
}

describe("purge plans", () => {
  it("records exactly the matching messages, never one being written, and counts todo ones", async () => {
    const a = q.add({ message: "Subject: a\n\nx\n", sender: "spam@bad.example" });
    const t = q.add({ message: "Subject: t\n\nx\n", sender: "spam@bad.example", state: "todo" });
    q.add({ message: "Subject: w\n\nx\n", sender: "spam@bad.example", state: "being-written" });
    q.add({ message: "Subject: h\n\nx\n", sender: "boss@good.example" });
    const shown: string[] = [];
    const summary = await plan(FROM_SPAM, { onMessage: (m) => void shown.push(m.id) });
    assert.equal(summary.matched, 2);
    assert.equal(summary.todo, 1);
    assert.equal(summary.beingWrittenSkipped, 1);
    assert.deepEqual(shown.sort(), [a.id, t.id].sort());
    assert.deepEqual(summary.sample.map((m) => m.id).sort(), [a.id, t.id].sort());
    const claimed = claimPlan(stateDir, summary.planId, queueIdentity(root));
    assert.deepEqual([...claimed.messages()].map((m) => m.id).sort(), [a.id, t.id].sort());
    assert.equal(claimed.header.who, "tester");
  });

  it("plans by id (qmHandle -dN): exactly the ids given that exist, todo ones too", async () => {
    const a = q.add({ message: "a\n" });
    const t = q.add({ message: "t\n", state: "todo" });
    q.add({ message: "other\n" });
    const summary = await plan({ criteria: [{ kind: "ids", ids: [a.id, t.id, "999999999"] }] });
    const claimed = claimPlan(stateDir, summary.planId, queueIdentity(root));
    assert.deepEqual(
      [...claimed.messages()].map((m) => [m.id, m.state]).sort(),
      [
        [a.id, "preprocessed"],
        [t.id, "todo"],
      ].sort(),
    );
  });

  it("keeps a large plan on disk, subjects intact across read chunks", async () => {
    const subject = "件名: 大量送信のお知らせ ".repeat(20);
    for (let i = 0; i < 150; i++)
      q.add({ message: `Subject: ${subject}${i}\n\nx\n`, sender: "spam@bad.example" });
    const summary = await plan(FROM_SPAM, { sampleSize: 3 });
    assert.equal(summary.sample.length, 3, "only the sample is kept in memory");
    const file = path.join(stateDir, "plans", summary.planId, "messages.jsonl");
    assert.ok(fs.statSync(file).size > 64 * 1024);
    const read = [...claimPlan(stateDir, summary.planId, queueIdentity(root)).messages()];
    assert.equal(read.length, 150);
    assert.ok(read.every((m) => m.subject.startsWith(subject)));
  });

  it("can be claimed once", async () => {
    q.add({ message: "x\n", sender: "spam@bad.example" });
    const summary = await plan();
    claimPlan(stateDir, summary.planId, queueIdentity(root));
    assert.throws(() => claimPlan(stateDir, summary.planId, queueIdentity(root)), /already executed/);
  });

  it("is refused once expired, and for another queue", async () => {
    q.add({ message: "x\n", sender: "spam@bad.example" });
    const now = Math.floor(Date.now() / 1000);
    const expiring = await plan(FROM_SPAM, { ttlMs: 60_000 });
    assert.throws(
      () => claimPlan(stateDir, expiring.planId, queueIdentity(root), now + 61),
      /expired at .*: preview the purge again/,
    );
    const other = await plan();
    assert.throws(
      () => claimPlan(stateDir, other.planId, "otherhost:1:2"),
      (e: unknown) => e instanceof PlanError && /was made for queue .* not this one/.test(e.message),
    );
    const good = await plan();
    assert.equal(claimPlan(stateDir, good.planId, queueIdentity(root), now + 1).header.planId, good.planId);
  });

  it("never takes a path for a plan id", () => {
    assert.throws(() => claimPlan(stateDir, "../../etc", queueIdentity(root)), /is not a plan id/);
  });

  it("removes expired plans when a new one is made", async () => {
    const old = await plan(FROM_SPAM, { ttlMs: 1000, now: Math.floor(Date.now() / 1000) - 10 });
    const fresh = await plan();
    assert.ok(!fs.existsSync(path.join(stateDir, "plans", old.planId)));
    assert.ok(fs.existsSync(path.join(stateDir, "plans", fresh.planId)));
    assert.deepEqual(removeExpiredPlans(stateDir), []);
  });
});
