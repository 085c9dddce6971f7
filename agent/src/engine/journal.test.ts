// The journal brings qmail-send back after an agent dies in the middle of a stopped purge.
// The purge runs in a real child process that is killed -9 while qmail-send is stopped.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { afterEach, beforeEach, describe, it } from "node:test";
import { type BuiltMessage, QueueBuilder, type StandIn, startQmailSend } from "@qmfleet/test";
import { acquireAgentLock } from "./agent-lock.js";
import { PurgeJournal, readJournals } from "./journal.js";
import { listQuarantine, type PurgeEnvironment, previewPurge, recoverPurges } from "./purge.js";
import { DEFAULT_QMAIL_SEND_CONFIG, findQmailSend, planControl } from "./qmail-send.js";

let dir: string;
let root: string;
let q: QueueBuilder;
let env: PurgeEnvironment;
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "journal-"));
  root = path.join(dir, "queue");
  q = QueueBuilder.create(root, {});
  env = {
    queueRoot: root,
    stateDir: path.join(dir, "state"),
    qmailSend: { ...DEFAULT_QMAIL_SEND_CONFIG, stopTimeoutMs: 3000, startTimeoutMs: 20_000 },
  };
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function standIn(): Promise<StandIn> {
  const s = await startQmailSend(root);
  cleanups.push(() => s.dispose());
  return s;
}

const spam = (n: number): BuiltMessage =>
  q.add({
    message: `Subject: s${n}\n\nx\n`,
    sender: "spam@bad.example",
    recipients: [{ address: `v${n}@far.example` }],
  });

/** Runs executePurge in a child agent that freezes after its first removal; resolves with the child once frozen. */
async function purgeThatFreezes(planId: string) {
  const script = path.join(dir, "agent.mts");
  fs.writeFileSync(
    script,
    `import { executePurge } from ${JSON.stringify(path.join(import.meta.dirname, "purge.ts"))};
const env = JSON.parse(process.argv[2]);
await executePurge(env, process.argv[3], { who: "child" }, (o) => {
  console.log(JSON.stringify(o));
  if (o.outcome === "removed") {
    console.log("FROZEN");
    return new Promise(() => {});
  }
});
`,
  );
  const child = spawn(
    process.execPath,
    [
      "--conditions=qmfleet-source",
      "--import",
      import.meta.resolve("tsx"),
      script,
      JSON.stringify(env),
      planId,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  for await (const line of readline.createInterface({ input: child.stdout })) {
    if (line === "FROZEN") break;
    lines.push(line);
  }
  return { child, exited, removed: lines.map((l) => JSON.parse(l) as { id: string; outcome: string }) };
}

describe("journal of a stopped purge", () => {
  it("after the agent is killed -9 mid-purge, the next start restarts qmail-send and reports the plan", async () => {
    const targets = [spam(1), spam(2), spam(3)];
    const s = await standIn();
    const plan = await previewPurge(env, {
      filter: { criteria: [{ kind: "senderExact", sender: "spam@bad.example" }] },
      mode: "stopped",
    });
    const { child, exited, removed } = await purgeThatFreezes(plan.planId);
    const gone = removed.find((o) => o.outcome === "removed");
    assert.ok(gone);
    assert.equal(findQmailSend(root), undefined, "frozen while qmail-send is stopped");
    assert.ok(s.log().includes("status: exiting"));
    child.kill("SIGKILL");
    await exited;

    const [report, ...more] = await recoverPurges(env);
    assert.deepEqual(more, []);
    assert.ok(report);
    assert.equal(report.planId, plan.planId);
    assert.deepEqual(report.removed, [gone.id]);
    assert.equal(report.lastEvent, "message");
    assert.match(report.qmailSend, /^started qmail-send again \(pid \d+\)/);
    assert.equal(report.resolved, true);
    const next = await s.successor();
    assert.equal(findQmailSend(root)?.pid, next.pid);
    assert.deepEqual(readJournals(env.stateDir), []);
    // Consistent: the removed message is wholly gone, the others wholly there (no orphan).
    for (const m of targets) {
      const present = m.written.filter((rel) => fs.existsSync(path.join(root, rel)));
      assert.deepEqual(present, m.id === gone.id ? [] : m.written, `message ${m.id}`);
    }
    // The copies taken before the stop: the removed message's is in the quarantine, those of
    // the messages still queued are dropped, and so is the staging directory.
    assert.equal(report.quarantined, 1);
    const kept = [...listQuarantine(env)];
    assert.deepEqual(
      kept.map((e) => e.originalId),
      [gone.id],
    );
    assert.deepEqual(
      fs.readdirSync(path.join(dir, "qmfleet-quarantine")).filter((n) => n.startsWith("staging-")),
      [],
    );
    assert.equal(
      fs.readFileSync(path.join(dir, "qmfleet-quarantine", kept[0]?.quarantineId ?? "", "mess"), "utf8"),
      "Subject: s1\n\nx\n".replace("s1", `s${targets.findIndex((m) => m.id === gone.id) + 1}`),
    );
  });

  it("leaves a journal alone while a live agent holds its queue, and resolves it once free", async () => {
    // What a live agent writes while qmail-send is stopped for its purge.
    const s = await standIn();
    const control = planControl(root, s.pid, env.qmailSend);
    const j = PurgeJournal.begin(env.stateDir, { planId: "a".repeat(24), queueRoot: root, wasRunning: true });
    j.record({ kind: "stopping", at: new Date().toISOString(), control }, true);
    await s.stop();
    j.record({ kind: "stopped", at: new Date().toISOString(), pid: s.pid }, true);
    j.close();
    const lock = acquireAgentLock(env.stateDir, root, "purge plan of a live agent");
    const [busy] = await recoverPurges(env);
    assert.match(busy?.qmailSend ?? "", /^left alone: another change to this queue is in progress/);
    assert.equal(readJournals(env.stateDir).length, 1);
    lock.release();
    const [done] = await recoverPurges(env);
    assert.equal(done?.resolved, true);
    assert.deepEqual(readJournals(env.stateDir), []);
    assert.equal(findQmailSend(root)?.pid, (await s.successor()).pid);
  });

  it("does not start a qmail-send the purge had not stopped", async () => {
    const j = PurgeJournal.begin(env.stateDir, {
      planId: "b".repeat(24),
      queueRoot: root,
      wasRunning: false,
    });
    j.record({ kind: "message", id: "123", outcome: "removed", touched: ["mess/8/123"] });
    j.close();
    const [report] = await recoverPurges(env);
    assert.match(report?.qmailSend ?? "", /was not running before the purge/);
    assert.deepEqual(report?.removed, ["123"]);
    assert.equal(findQmailSend(root), undefined);
  });

  it("reads a journal whose last line the crash cut in half", () => {
    const j = PurgeJournal.begin(env.stateDir, {
      planId: "c".repeat(24),
      queueRoot: root,
      wasRunning: false,
    });
    j.record({ kind: "message", id: "7", outcome: "removed", touched: [] });
    j.close();
    fs.appendFileSync(path.join(env.stateDir, "journal", `${"c".repeat(24)}.jsonl`), '{"kind":"mess');
    const [read] = readJournals(env.stateDir);
    assert.deepEqual(
      read?.messages.map((m) => m.id),
      ["7"],
    );
    assert.equal(read?.lastEvent, "message");
  });
});
