// `qmfleet-agent local` changing a queue as an operator runs it: the real bin in a child process,
// queues the queue builder wrote (files named by their inodes), the qmail-send stand-in as a real
// process holding lock/sendmutex, real signals, the test qmail-queue for restores.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type BuiltMessage,
  installQmailQueue,
  QueueBuilder,
  type StandIn,
  startQmailSend,
} from "@qmfleet/test";
import { findQmailSend } from "../engine/qmail-send.js";

const AGENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = path.join(AGENT_DIR, "src", "bin", "qmfleet-agent.ts");

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let root: string;
let state: string;
let q: QueueBuilder;
const cleanups: Array<() => Promise<void> | void> = [];

/** `qmfleet-agent local --queue ROOT --state-dir STATE ARGS`, to its end (async: the stand-in runs meanwhile). */
async function local(...args: string[]): Promise<Result> {
  const child = spawn(
    process.execPath,
    [
      "--conditions=qmfleet-source",
      "--import",
      "tsx",
      BIN,
      "local",
      "--queue",
      root,
      "--state-dir",
      state,
      ...args,
    ],
    { cwd: AGENT_DIR, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { status, stdout, stderr };
}

function storm(n: number): BuiltMessage {
  return q.add({
    message: `Received: (qmail ${n} invoked by uid 0); 1 Jan 2026 00:00:00 -0000\nFrom: MAILER-DAEMON@bounce.example\nSubject: failure notice\n\nbounce ${n}\n`,
    sender: "",
    recipients: [{ address: "support@abcde.net", channel: "remote" }],
  });
}

function ham(n: number, birthTime?: number): BuiltMessage {
  return q.add({
    message: `Received: (qmail ${n} invoked by uid 0); 1 Jan 2026 00:00:00 -0000\nSubject: minutes ${n}\n\nsee attached\n`,
    sender: "boss@good.example",
    recipients: [
      { address: `staff${n}@slow.example`, channel: "remote" },
      { address: `me${n}@here.example`, channel: "local" },
    ],
    ...(birthTime !== undefined ? { birthTime } : {}),
  });
}

/** Every file of these messages with its bytes: what "left untouched" must keep. */
function snapshot(messages: BuiltMessage[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of messages) {
    for (const rel of m.written) files.set(rel, fs.readFileSync(path.join(root, rel)).toString("base64"));
  }
  return files;
}

const gone = (m: BuiltMessage) => m.written.every((rel) => !fs.existsSync(path.join(root, rel)));

async function standIn(): Promise<StandIn> {
  const s = await startQmailSend(root, { locals: ["here.example"] });
  cleanups.push(() => s.dispose());
  return s;
}

function auditLines(): Array<Record<string, unknown>> {
  return fs
    .readFileSync(path.join(state, "audit.log"), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

interface PurgeDoc {
  planId: string;
  mode: string;
  matched: number;
  purged: number;
  retired: number;
  skippedChanged: number;
  gone: number;
  failed: number;
  awaitingRetirement: number;
  downtimeMs: number;
  qmailSendRestarted: boolean;
  notes: string[];
  outcomes: Array<{ id: string; outcome: string; quarantineId?: string }>;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-local-purge-"));
  root = path.join(dir, "queue");
  state = path.join(dir, "state");
  q = QueueBuilder.create(root);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("qmfleet-agent local: deleting", () => {
  it("--yes --json purges live under a running qmail-send: every match retired, no warning, the rest untouched", async () => {
    const targets = [storm(1), storm(2), storm(3)];
    const others = [ham(4), ham(5)];
    const kept = snapshot(others);
    const qs = await standIn();
    const r = await local("-Sfailure notice", "--yes", "--reason", "storm INC-1", "--json");
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as PurgeDoc;
    assert.deepEqual(
      [doc.mode, doc.matched, doc.purged, doc.retired, doc.skippedChanged, doc.gone, doc.failed],
      ["live", 3, 3, 3, 0, 0, 0],
    );
    assert.equal(doc.awaitingRetirement, 0);
    const ids = targets.map((t) => t.id).sort();
    assert.deepEqual(
      doc.outcomes
        .filter((o) => o.outcome === "retired")
        .map((o) => o.id)
        .sort(),
      ids,
    );
    for (const t of targets) assert.ok(gone(t), `${t.id} left files behind`);
    assert.deepEqual(snapshot(others), kept);
    // qmail-send retired them through its own code path, and never complained.
    for (const id of ids) await qs.waitForLog(new RegExp(`^end msg ${id}$`));
    assert.deepEqual(
      qs.log().filter((l) => l.includes("warning:")),
      [],
    );
    assert.equal(findQmailSend(root)?.pid, qs.pid, "qmail-send kept running, the same process");
    const execute = auditLines().find((a) => a.event === "purge-execute");
    assert.equal(execute?.who, os.userInfo().username);
    assert.equal(execute?.reason, "storm INC-1");
  });

  it("--stopped stops qmail-send for the removal and starts it again, and reports the downtime", async () => {
    const targets = [storm(1), storm(2)];
    const others = [ham(3)];
    const kept = snapshot(others);
    const qs = await standIn();
    const r = await local("-Sfailure notice", "--stopped", "--yes", "--reason", "stopped run", "--json");
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as PurgeDoc;
    assert.deepEqual([doc.mode, doc.purged, doc.retired, doc.failed], ["stopped", 2, 0, 0]);
    assert.equal(doc.qmailSendRestarted, true);
    assert.ok(doc.downtimeMs > 0, `downtime ${doc.downtimeMs}`);
    for (const t of targets) assert.ok(gone(t));
    assert.deepEqual(snapshot(others), kept);
    await qs.waitForExit();
    const next = await qs.successor();
    assert.equal(findQmailSend(root)?.pid, next.pid, "a new qmail-send holds lock/sendmutex");
  });

  it("with no qmail-send running, purges stopped and does not start it", async () => {
    const targets = [storm(1)];
    const others = [ham(2)];
    const kept = snapshot(others);
    const r = await local("-Sfailure notice", "--yes", "--reason", "no qmail-send", "--json");
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as PurgeDoc;
    assert.deepEqual(
      [doc.mode, doc.purged, doc.qmailSendRestarted, doc.downtimeMs],
      ["stopped", 1, false, 0],
    );
    assert.ok(gone(targets[0] as BuiltMessage));
    assert.deepEqual(snapshot(others), kept);
    assert.equal(findQmailSend(root), undefined, "qmail-send was not started");
  });

  it("refuses --yes without --reason and changes nothing; the preview changes nothing either", async () => {
    const all = [storm(1), ham(2)];
    const before = snapshot(all);
    const refused = await local("-Sfailure notice", "--yes");
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /--yes needs --reason TEXT: why, for the audit log .*Nothing was changed\./);
    const preview = await local("-Sfailure notice", "--json");
    assert.equal(preview.status, 0, preview.stderr);
    const doc = JSON.parse(preview.stdout) as { count: number; mode: string; command: string };
    assert.deepEqual([doc.count, doc.mode], [1, "stopped"]);
    assert.match(
      doc.command,
      /^qmfleet-agent local --queue \S+ --state-dir \S+ '-Sfailure notice' --json --yes --reason '<why>'$/,
    );
    assert.deepEqual(snapshot(all), before);
    assert.equal(fs.existsSync(state), false, "neither made a state directory");
  });
});

describe("qmfleet-agent local: quarantine, retry, send now", () => {
  it("--quarantine lists what a purge kept and --restore puts it back through qmail-queue", async () => {
    const target = storm(1);
    const body = fs.readFileSync(path.join(root, target.paths.mess));
    const qmailQueue = installQmailQueue(root, dir);
    const purge = await local("-d", target.id, "--yes", "--reason", "oops", "--json");
    assert.equal(purge.status, 0, purge.stderr);
    const quarantineId = (JSON.parse(purge.stdout) as PurgeDoc).outcomes[0]?.quarantineId;
    assert.ok(quarantineId, purge.stdout);
    assert.ok(gone(target));

    const listed = JSON.parse((await local("--quarantine", "--json")).stdout) as {
      entries: Array<{ quarantineId: string; originalId: string; reason: string; sender: string }>;
    };
    assert.deepEqual(
      listed.entries.map((e) => [e.quarantineId, e.originalId, e.reason, e.sender]),
      [[quarantineId, target.id, "oops", ""]],
    );

    const restored = await local("--restore", quarantineId, "--qmail-queue", qmailQueue, "--reason", "undo");
    assert.equal(restored.status, 0, restored.stderr);
    assert.equal(restored.stdout, `${quarantineId}: restored\n`);
    const logged = auditLines().find((a) => a.event === "quarantine-restore");
    assert.deepEqual([logged?.quarantineId, logged?.ok, logged?.reason], [quarantineId, true, "undo"]);
    // Back in the queue under a new id, with a new Received line above the original bytes.
    const back = JSON.parse((await local("-l", "--json")).stdout) as { messages: Array<{ path: string }> };
    assert.equal(back.messages.length, 1);
    const again = fs.readFileSync(path.join(root, back.messages[0]?.path ?? ""));
    assert.ok(again.subarray(again.length - body.length).equals(body));
    assert.match(again.toString("utf8"), /^Received: /);
    const empty = JSON.parse((await local("--quarantine", "--json")).stdout) as { count: number };
    assert.equal(empty.count, 0);
  });

  it("--restore of an unknown id says so, exits 4, and restores nothing", async () => {
    const r = await local(
      "--restore",
      "20260101T000000Z-5-0a0b0c0d",
      "--qmail-queue",
      installQmailQueue(root, dir),
    );
    assert.equal(r.status, 4);
    assert.match(r.stdout, /^20260101T000000Z-5-0a0b0c0d: NOT restored: no quarantined message/);
  });

  it("-t sets the birth time of matching messages to now, and of no other", async () => {
    const old = Math.floor(Date.now() / 1000) - 3 * 86_400;
    const slow = ham(1, old);
    const other = q.add({
      message: "Subject: other\n\nx\n",
      sender: "a@b.example",
      recipients: [{ address: "r@fast.example", channel: "remote" }],
      birthTime: old,
    });
    const started = Math.floor(Date.now() / 1000);
    const r = await local("-t@slow\\.example$", "--reason", "link back up", "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { matched: 1, changed: 1, signaled: false, pid: 0 });
    const mtime = (m: BuiltMessage) => Math.floor(fs.statSync(path.join(root, m.paths.info)).mtimeMs / 1000);
    assert.ok(mtime(slow) >= started, "the match is due now");
    assert.equal(mtime(other), old, "the other message keeps its birth time");
    const audit = auditLines().find((a) => a.event === "retry-sooner");
    assert.deepEqual([audit?.reason, audit?.changed], ["link back up", 1]);
  });

  it("-a sends ALRM to the running qmail-send, which retries at once; without one it says so", async () => {
    const none = await local("-a", "--json");
    assert.deepEqual(JSON.parse(none.stdout), { signaled: false, pid: 0 });
    ham(1);
    const qs = await standIn();
    // Its first attempt at start, deferred: from now on only an ALRM makes it try again soon.
    await qs.waitForLog(/^delivery \d+: deferral/);
    const mark = qs.log().length;
    const r = await local("-a", "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { signaled: true, pid: qs.pid });
    await qs.waitForLog(/^starting delivery \d+: msg \d+ to remote staff1@slow\.example$/, { from: mark });
  });
});
