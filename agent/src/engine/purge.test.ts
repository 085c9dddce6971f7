// Purges end to end: real queues written by the queue builder (files named by their inodes),
// the qmail-send stand-in as a real process, real signals, real file system failures.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  type BuiltMessage,
  installQmailQueue,
  QueueBuilder,
  type StandIn,
  type StandInOptions,
  startQmailSend,
  waitUntil,
} from "@qmfleet/test";
import { AgentLockBusyError } from "./agent-lock.js";
import { AuditLog } from "./audit.js";
import type { Filter, QueuedMessage } from "./model.js";
import {
  type ExecuteRequest,
  executePurge,
  listQuarantine,
  type PurgeEnvironment,
  previewPurge,
  restoreQuarantined,
} from "./purge.js";
import type { MessageOutcome } from "./purge-target.js";
import { DEFAULT_QMAIL_SEND_CONFIG, findQmailSend } from "./qmail-send.js";
import { WHOLE_FILE_MAX } from "./queue-file.js";

let dir: string;
let root: string;
let q: QueueBuilder;
let env: PurgeEnvironment;
const cleanups: Array<() => Promise<void> | void> = [];

const SPAM: Filter = { criteria: [{ kind: "senderExact", sender: "spam@bad.example" }] };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "purge-"));
  root = path.join(dir, "queue");
  q = QueueBuilder.create(root, { virtualDomains: { "vdom.example": "vp" } });
  env = {
    queueRoot: root,
    stateDir: path.join(dir, "state"),
    qmailSend: {
      ...DEFAULT_QMAIL_SEND_CONFIG,
      stopTimeoutMs: 3000,
      escalateWaitMs: 2000,
      startTimeoutMs: 20_000,
      qmailQueue: installQmailQueue(root, dir),
    },
    audit: new AuditLog(path.join(dir, "state", "audit.log")),
  };
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  env.audit?.close();
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function standIn(opts: StandInOptions = {}): Promise<StandIn> {
  const s = await startQmailSend(root, { locals: ["here.example"], ...opts });
  cleanups.push(() => s.dispose());
  return s;
}

/**
 * Builds messages with `build` until one is given inode `id` again, as a busy server would.
 * ext4 usually hands a freed inode to the next file, but a lower hole left by another test can
 * come first: files that miss are kept (filling the holes) until the freed inode comes back.
 * The fillers stay in pid/ until the test's directory goes; the agent never reads pid/.
 */
function reuseInode(id: string, build: () => BuiltMessage): BuiltMessage {
  // In pid/, where qmail-queue (and the builder) creates the file that becomes the mess: new
  // inodes are taken near their directory's, so fillers elsewhere would not fill these holes.
  for (let i = 0; i < 20_000; i++) {
    const filler = path.join(root, "pid", `filler.${i}`);
    fs.writeFileSync(filler, "");
    if (fs.statSync(filler).ino.toString() !== id) continue;
    fs.unlinkSync(filler); // the lowest free inode again: the next file gets it
    const b = build();
    if (b.id === id) return b;
  }
  throw new Error(`the file system under ${dir} did not give inode ${id} back`);
}

function spam(n: number, extra: Partial<Parameters<QueueBuilder["add"]>[0]> = {}): BuiltMessage {
  return q.add({
    message: `Subject: win ${n}\n\nbuy now ${n}\n`,
    sender: "spam@bad.example",
    recipients: [{ address: `victim${n}@far.example` }],
    ...extra,
  });
}

function ham(n: number): BuiltMessage {
  return q.add({
    message: `Subject: minutes ${n}\n\nsee attached\n`,
    sender: "boss@good.example",
    recipients: [{ address: `staff${n}@far.example` }, { address: `me${n}@here.example`, channel: "local" }],
  });
}

/** Every file of the messages, with its bytes: what "left untouched" must keep. */
function snapshot(messages: BuiltMessage[]): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const m of messages)
    for (const rel of m.written) files.set(rel, fs.readFileSync(path.join(root, rel)));
  return files;
}

const exists = (rel: string) => fs.existsSync(path.join(root, rel));

async function preview(filter: Filter = SPAM, over: Parameters<typeof previewPurge>[1] = { filter }) {
  const shown: QueuedMessage[] = [];
  const plan = await previewPurge(env, { reason: "spam run", who: "tester", ...over, filter }, (m) => {
    shown.push(m);
  });
  return { plan, shown };
}

async function execute(planId: string, req: ExecuteRequest = {}) {
  const outcomes: MessageOutcome[] = [];
  const report = await executePurge(env, planId, { who: "tester", ...req }, (o) => {
    outcomes.push(o);
  });
  return { report, outcomes };
}

const kinds = (outcomes: MessageOutcome[], id: string) =>
  outcomes.filter((o) => o.id === id).map((o) => o.outcome);

describe("live purge against a running qmail-send", () => {
  it("neutralizes then retires every match through qmail-send; no warning; the rest byte-identical", async () => {
    const targets = [
      spam(1),
      spam(2),
      spam(3, {
        recipients: [{ address: "u@here.example", channel: "local" }, { address: "v@far.example" }],
      }),
      spam(4, {
        bounce: "<x@far.example>:\nno.\n\n",
        recipients: [{ address: "x@far.example", done: true }, { address: "y@far.example" }],
      }),
      spam(5, {
        recipients: [{ address: "user@vdom.example", stored: "vp-user@vdom.example", channel: "local" }],
      }),
    ];
    const others = [ham(1), ham(2), ham(3)];
    const s = await standIn();
    const before = snapshot(others);
    const { plan, shown } = await preview();
    assert.equal(plan.mode, "live");
    assert.deepEqual(shown.map((m) => m.id).sort(), targets.map((m) => m.id).sort());
    const { report, outcomes } = await execute(plan.planId);
    for (const m of targets) {
      assert.deepEqual(kinds(outcomes, m.id), ["neutralized", "retired"], `message ${m.id}`);
      assert.ok(
        !exists(m.paths.mess) && !exists(m.paths.info) && !exists(m.paths.remote) && !exists(m.paths.local),
      );
    }
    assert.equal(report.purged, 5);
    assert.equal(report.retired, 5);
    assert.equal(report.awaitingRetirement, 0);
    assert.equal(report.downtimeMs, 0);
    const log = s.log();
    for (const m of targets) assert.ok(log.includes(`end msg ${m.id}`), `qmail-send retired ${m.id}`);
    assert.deepEqual(
      log.filter((l) => l.startsWith("warning:")),
      [],
    );
    assert.ok(
      !log.some((l) => l.startsWith(`bounce msg ${targets[3]?.id}`)),
      "no bounce for the bouncing one",
    );
    assert.deepEqual(snapshot(others), before);
    assert.equal([...listQuarantine(env)].length, 5);
    assert.equal(findQmailSend(root)?.pid, s.pid, "qmail-send ran all along");
  });

  it("a delivery in progress while marked ends as a deferral, and the message retires at its next pass", async () => {
    const m = spam(1, { recipients: [{ address: "r@tarpit.example" }] });
    const s = await standIn({ rules: [{ match: "tarpit", action: "hang" }] });
    const remote = await waitUntil(() => s.deliveries()[0], 5000, "the delivery in progress");
    const { plan } = await preview();
    const { report, outcomes } = await execute(plan.planId, { retireTimeoutMs: 1500, pollMs: 50 });
    assert.deepEqual(kinds(outcomes, m.id), ["neutralized"]);
    assert.equal(report.awaitingRetirement, 1, "its delivery slot is busy: neutralized, not yet retired");
    assert.deepEqual(fs.readFileSync(path.join(root, m.paths.remote), "latin1"), "Dr@tarpit.example\0");
    process.kill(remote, "SIGTERM");
    await s.waitForLog(/^delivery 1: deferral: qmail-remote_crashed\.\/$/);
    const mark = s.log().length;
    s.alarm();
    await s.waitForLog(new RegExp(`^end msg ${m.id}$`), { from: mark });
    await waitUntil(() => !exists(m.paths.mess), 5000, "mess to go");
    assert.deepEqual(
      s.log().filter((l) => l.startsWith("warning:")),
      [],
    );
  });

  it("with no_flush sends no ALRM: messages stay neutralized until their own retry", async () => {
    const m = spam(1);
    const s = await standIn();
    await s.waitForLog(/: deferral: /); // its first attempt; the next one is minutes away
    const { plan } = await preview();
    const { report, outcomes } = await execute(plan.planId, {
      noFlush: true,
      retireTimeoutMs: 800,
      pollMs: 50,
    });
    assert.deepEqual(kinds(outcomes, m.id), ["neutralized"]);
    assert.equal(report.awaitingRetirement, 1);
    assert.match(report.notes.join("\n"), /no ALRM/);
    s.alarm(); // what its next retry would do
    await s.waitForLog(new RegExp(`^end msg ${m.id}$`));
  });

  it("sends ALRM again only while retirement stalls, and no more than maxAlarms", async () => {
    const m = spam(1);
    const s = await standIn({ ignoreAlarm: true }); // a qmail-send busy elsewhere: nothing retires
    await s.waitForLog(/: deferral: /); // its first attempt; the next one is minutes away
    const { plan } = await preview();
    const { report, outcomes } = await execute(plan.planId, {
      alarmIntervalMs: 300,
      maxAlarms: 3,
      retireTimeoutMs: 2500,
      pollMs: 50,
    });
    assert.deepEqual(kinds(outcomes, m.id), ["neutralized"]);
    assert.equal(report.awaitingRetirement, 1);
    assert.match(report.notes.join("\n"), /^3 ALRM sent/m);
  });

  it("sends one ALRM when qmail-send retires the messages (its twin)", async () => {
    const ms = [spam(1), spam(2), spam(3)];
    await standIn();
    const { plan } = await preview();
    const { report, outcomes } = await execute(plan.planId, {
      alarmIntervalMs: 5000,
      maxAlarms: 3,
      pollMs: 50,
    });
    for (const m of ms) assert.deepEqual(kinds(outcomes, m.id), ["neutralized", "retired"]);
    assert.equal(report.awaitingRetirement, 0);
    assert.match(report.notes.join("\n"), /^1 ALRM sent/m);
  });

  it("handles messages still in todo/ once qmail-send has preprocessed them (second round)", async () => {
    const s = await standIn();
    const m = spam(1, { state: "todo" });
    const { plan } = await preview();
    assert.equal(plan.todo, 1);
    const { outcomes } = await execute(plan.planId, { pollMs: 50 });
    assert.deepEqual(kinds(outcomes, m.id), ["neutralized", "retired"]);
    assert.ok(s.log().includes(`new msg ${m.id}`), "preprocessed by qmail-send after the trigger");
    assert.ok(s.log().includes(`end msg ${m.id}`));
  });

  it("without qmail-send: neutralizes, and the messages retire when it starts", async () => {
    const m = spam(1);
    const t = spam(2, { state: "todo" });
    const { plan } = await preview(SPAM, { filter: SPAM, mode: "live" });
    const { report, outcomes } = await execute(plan.planId, { retireTimeoutMs: 300 });
    assert.deepEqual(kinds(outcomes, m.id), ["neutralized"]);
    assert.deepEqual(kinds(outcomes, t.id), ["failed"]);
    assert.match(outcomes.find((o) => o.id === t.id)?.error ?? "", /purge it in stopped mode/);
    assert.match(report.notes.join("\n"), /retire when it starts/);
    const s = await standIn();
    await s.waitForLog(new RegExp(`^end msg ${m.id}$`));
  });
});

describe("what changed between preview and execute", () => {
  it("skips a message whose id now names another message (the inode was reused)", async () => {
    const a = spam(1);
    const { plan } = await preview();
    for (const rel of a.written) fs.unlinkSync(path.join(root, rel)); // delivered
    const b = reuseInode(a.id, () => ham(1));
    const before = snapshot([b]);
    const { report, outcomes } = await execute(plan.planId);
    assert.deepEqual(kinds(outcomes, a.id), ["skipped_changed"]);
    assert.match(outcomes[0]?.error ?? "", /the id names another message now/);
    assert.equal(report.purged, 0);
    assert.deepEqual(snapshot([b]), before);
  });

  it("skips a message whose mess file changed in place (same inode)", async () => {
    const a = spam(1);
    const { plan } = await preview();
    fs.writeFileSync(path.join(root, a.paths.mess), "Subject: other\n\nnot the same\n");
    const { outcomes } = await execute(plan.planId);
    assert.deepEqual(kinds(outcomes, a.id), ["skipped_changed"]);
    assert.ok(exists(a.paths.mess) && exists(a.paths.remote));
  });

  it("reports a message delivered meanwhile as gone", async () => {
    const a = spam(1);
    const b = spam(2);
    const { plan } = await preview();
    for (const rel of a.written) fs.unlinkSync(path.join(root, rel));
    const { report, outcomes } = await execute(plan.planId);
    assert.deepEqual(kinds(outcomes, a.id), ["gone"]);
    assert.deepEqual(kinds(outcomes, b.id), ["removed"]);
    assert.equal(report.gone, 1);
  });

  it("never follows nor removes a symlink or an odd entry among a message's files", async () => {
    const a = spam(1);
    const b = spam(2);
    const c = spam(3);
    const outside = path.join(dir, "precious");
    fs.writeFileSync(outside, "keep me\n");
    fs.unlinkSync(path.join(root, a.paths.remote));
    fs.symlinkSync(outside, path.join(root, a.paths.remote));
    fs.unlinkSync(path.join(root, b.paths.remote));
    fs.mkdirSync(path.join(root, b.paths.remote));
    fs.writeFileSync(path.join(root, b.paths.remote, "x"), "not empty");
    const before = snapshot(
      [a, b].map((m) => ({ ...m, written: m.written.filter((r) => !r.startsWith("remote")) })),
    );
    const { plan } = await preview();
    const { outcomes } = await execute(plan.planId);
    assert.deepEqual(kinds(outcomes, a.id), ["failed"]);
    assert.match(outcomes.find((o) => o.id === a.id)?.error ?? "", /is a symlink: left alone/);
    assert.deepEqual(kinds(outcomes, b.id), ["failed"]);
    assert.match(outcomes.find((o) => o.id === b.id)?.error ?? "", /is a directory: left alone/);
    assert.deepEqual(kinds(outcomes, c.id), ["removed"], "the others go on");
    assert.equal(fs.readFileSync(outside, "utf8"), "keep me\n");
    assert.ok(fs.lstatSync(path.join(root, a.paths.remote)).isSymbolicLink());
    assert.deepEqual(
      snapshot([a, b].map((m) => ({ ...m, written: m.written.filter((r) => !r.startsWith("remote")) }))),
      before,
    );
  });

  it("fails a message whose envelope file grew past any envelope's size, touching nothing", async () => {
    const a = spam(1);
    const b = spam(2);
    const { plan } = await preview();
    fs.truncateSync(path.join(root, a.paths.remote), WHOLE_FILE_MAX + 1);
    const before = snapshot([{ ...a, written: a.written.filter((r) => !r.startsWith("remote")) }]);
    const { report, outcomes } = await execute(plan.planId);
    assert.deepEqual(kinds(outcomes, a.id), ["failed"]);
    assert.match(
      outcomes.find((o) => o.id === a.id)?.error ?? "",
      new RegExp(`cannot read .*${a.paths.remote}: EFBIG \\(larger than any qmail envelope file`),
    );
    // A stopped purge stops at a failure (as at a failed unlink), saying what went of it: nothing.
    assert.match(
      report.error ?? "",
      new RegExp(`stopped at message ${a.id}: .*EFBIG.*; removed of it: nothing`),
    );
    // b is removed when the plan has it first, left unprocessed when it comes after a.
    assert.equal(report.purged + report.notProcessed, 1);
    assert.deepEqual(kinds(outcomes, b.id), report.purged === 1 ? ["removed"] : []);
    assert.equal(b.written.every(exists), report.purged === 0);
    assert.equal(fs.statSync(path.join(root, a.paths.remote)).size, WHOLE_FILE_MAX + 1);
    assert.deepEqual(snapshot([{ ...a, written: a.written.filter((r) => !r.startsWith("remote")) }]), before);
  });

  it("live, without quarantine: the mark step refuses such a file, the others are neutralized", async () => {
    const a = spam(1);
    const b = spam(2);
    const { plan } = await preview(SPAM, { filter: SPAM, mode: "live", quarantine: false });
    fs.truncateSync(path.join(root, a.paths.remote), WHOLE_FILE_MAX + 1);
    const { outcomes } = await execute(plan.planId, { retireTimeoutMs: 300 });
    assert.deepEqual(kinds(outcomes, a.id), ["failed"]);
    assert.match(
      outcomes.find((o) => o.id === a.id)?.error ?? "",
      /: EFBIG \(larger than any qmail envelope/,
    );
    assert.deepEqual(kinds(outcomes, b.id), ["neutralized"]);
    assert.equal(fs.statSync(path.join(root, a.paths.remote)).size, WHOLE_FILE_MAX + 1);
    assert.ok(a.written.every(exists));
  });

  it("does not touch a message whose mess is a symlink (never followed)", async () => {
    const a = spam(1);
    const { plan } = await preview();
    const real = path.join(dir, "elsewhere");
    fs.renameSync(path.join(root, a.paths.mess), real);
    fs.symlinkSync(real, path.join(root, a.paths.mess));
    const { outcomes } = await execute(plan.planId);
    assert.deepEqual(kinds(outcomes, a.id), ["failed"]);
    assert.ok(fs.existsSync(real) && exists(a.paths.info) && exists(a.paths.remote));
  });
});

describe("stopped purge", () => {
  it("stops qmail-send, removes in qmail's order, starts it again; quarantine restores a message", async () => {
    const targets = [
      spam(1),
      spam(2, { state: "todo" }),
      spam(3, { bounce: "<v@far.example>:\nno.\n\n" }),
      spam(4, {
        recipients: [{ address: "v4@far.example" }, { address: "me4@here.example", channel: "local" }],
      }),
    ];
    const others = [ham(1), ham(2)];
    const s = await standIn();
    const before = snapshot(others);
    const { plan } = await preview(SPAM, { filter: SPAM, mode: "stopped" });
    assert.equal(plan.mode, "stopped");
    const { report, outcomes } = await execute(plan.planId);
    for (const m of targets) {
      assert.deepEqual(kinds(outcomes, m.id), ["removed"]);
      for (const rel of m.written) assert.ok(!exists(rel), `${rel} removed`);
      // No file of it is left, each one removed is reported, in qmail's order, mess last. (qmail-send
      // ran until the stop: it may have preprocessed the todo one or handled the bounce.)
      const touched = outcomes.find((o) => o.id === m.id)?.touched ?? [];
      for (const rel of Object.values(m.paths)) assert.ok(!exists(rel), `${rel} removed`);
      assert.deepEqual(
        touched,
        [...touched].sort((x, y) => order(x) - order(y)),
      );
      assert.equal(touched.at(-1), m.paths.mess, "mess last");
      if (m !== targets[1])
        for (const rel of m.written.filter((r) => !r.startsWith("bounce/")))
          assert.ok(touched.includes(rel), `${rel} reported`);
    }
    assert.equal(report.purged, targets.length);
    assert.ok(report.qmailSendRestarted);
    assert.ok(report.downtimeMs > 0 && report.removalMs <= report.downtimeMs);
    assert.ok(s.log().includes("status: exiting"));
    const next = await s.successor();
    assert.equal(findQmailSend(root)?.pid, next.pid);
    assert.deepEqual(snapshot(others), before);
    assert.deepEqual(fs.readdirSync(path.join(env.stateDir, "journal")), [], "journal removed");

    // Undo one: restore through qmail-queue; the running qmail-send preprocesses it.
    const entry = [...listQuarantine(env)].find((e) => e.originalId === targets[0]?.id);
    assert.ok(entry);
    const mark = next.log().length;
    const [restored] = await restoreQuarantined(env, [entry.quarantineId], { who: "tester" });
    assert.equal(restored?.ok, true);
    const line = await next.waitForLog(/^info msg \d+: .* from <spam@bad\.example>/, { from: mark });
    const id = line.split(" ")[2]?.replace(":", "") ?? "";
    assert.notEqual(id, targets[0]?.id);
    const mess = fs.readFileSync(path.join(root, "mess", String(BigInt(id) % 23n), id), "utf8");
    assert.equal(mess.slice(mess.indexOf("\n") + 1), "Subject: win 1\n\nbuy now 1\n");
  });

  it("takes the copies before the stop; inside it, rewrites one a delivery changed, drops one delivered", async () => {
    const a = spam(1, { recipients: [{ address: "one@far.example" }, { address: "two@far.example" }] });
    const b = spam(2);
    const c = spam(3);
    const s = await standIn();
    // The stop command sees the staging area, then plays qmail-send's last deliveries before
    // TERMing it: one of a's recipients done (T -> D in place), b delivered and retired.
    const quarantineDir = path.join(dir, "qmfleet-quarantine");
    const seen = path.join(dir, "staged-at-stop");
    const stop = path.join(dir, "stop-qmail-send");
    fs.writeFileSync(
      stop,
      [
        "#!/bin/sh",
        `ls '${quarantineDir}'/staging-*/ | grep -c . > '${seen}'`,
        `printf D | dd of='${path.join(root, a.paths.remote)}' bs=1 count=1 conv=notrunc 2>/dev/null`,
        `rm -f ${b.written.map((rel) => `'${path.join(root, rel)}'`).join(" ")}`,
        `kill -TERM ${s.pid}`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    env.qmailSend = { ...env.qmailSend, stop: [stop] };
    const { plan } = await preview(SPAM, { filter: SPAM, mode: "stopped" });
    const { outcomes } = await execute(plan.planId);
    assert.equal(fs.readFileSync(seen, "utf8").trim(), "3", "all three copied before the stop");
    assert.deepEqual(
      [a, b, c].map((m) => kinds(outcomes, m.id)),
      [["removed"], ["gone"], ["removed"]],
    );
    await s.successor();
    const kept = [...listQuarantine(env)];
    assert.deepEqual(kept.map((e) => e.originalId).sort(), [a.id, c.id].sort());
    assert.deepEqual(
      kept.find((e) => e.originalId === a.id)?.recipients.map((r) => [r.address, r.done]),
      [
        ["one@far.example", true],
        ["two@far.example", false],
      ],
    );
    assert.deepEqual(
      outcomes
        .filter((o) => o.outcome === "removed")
        .map((o) => o.quarantineId)
        .sort(),
      kept.map((e) => e.quarantineId).sort(),
    );
    assert.deepEqual(
      fs.readdirSync(quarantineDir).filter((n) => n.startsWith("staging-")),
      [],
    );
  });

  it("never starts a qmail-send that was not running", async () => {
    spam(1);
    const { plan } = await preview();
    assert.equal(plan.mode, "stopped");
    const { report } = await execute(plan.planId);
    assert.equal(report.purged, 1);
    assert.equal(report.qmailSendRestarted, false);
    assert.equal(findQmailSend(root), undefined);
  });

  it("stops at an unlink that fails half way, reports exactly what went, and restarts qmail-send", async () => {
    for (let n = 1; n <= 3; n++) spam(n, { bounce: `<victim${n}@far.example>:\nno.\n\n` });
    const s = await standIn();
    const { plan, shown } = await preview(SPAM, { filter: SPAM, mode: "stopped" });
    const [first, middle, last] = shown;
    assert.ok(first && middle && last);
    // chattr +i: unlink(info) fails with EPERM, even for root, after local/remote/bounce went.
    const info = path.join(root, middle.paths.info);
    execFileSync("chattr", ["+i", info]);
    try {
      const { report, outcomes } = await execute(plan.planId);
      assert.deepEqual(kinds(outcomes, first.id), ["removed"]);
      const failed = outcomes.find((o) => o.id === middle.id);
      assert.equal(failed?.outcome, "failed");
      assert.match(failed?.error ?? "", /^cannot remove .*info\/\d+\/\d+: EPERM/);
      assert.deepEqual(failed?.touched, [middle.paths.remote, middle.paths.bounce]);
      assert.deepEqual(kinds(outcomes, last.id), [], "nothing after the failure");
      assert.equal(report.notProcessed, 1);
      assert.match(
        report.error ?? "",
        new RegExp(
          `stopped at message ${middle.id}: .*EPERM.*removed of it: ${middle.paths.remote}, ${middle.paths.bounce}`,
        ),
      );
      assert.ok(exists(middle.paths.mess), "mess stays: it goes last");
      assert.ok(exists(last.paths.mess) && exists(last.paths.remote) && exists(last.paths.info));
      assert.ok(report.qmailSendRestarted);
      await s.successor();
      // The removed message keeps its copy, and so does the one cut half way (its outcome names
      // it); the copy taken for the one never reached is dropped.
      const kept = [...listQuarantine(env)];
      assert.deepEqual(kept.map((e) => e.originalId).sort(), [first.id, middle.id].sort());
      assert.ok(kept.some((e) => e.quarantineId === failed?.quarantineId));
    } finally {
      execFileSync("chattr", ["-i", info]);
    }
  });

  it("says loudly when qmail-send cannot be started again, and keeps the journal for the next start", async () => {
    spam(1);
    await standIn();
    env.qmailSend = { ...env.qmailSend, start: null };
    const { plan } = await preview(SPAM, { filter: SPAM, mode: "stopped" });
    const { report } = await execute(plan.planId);
    assert.equal(report.purged, 1);
    assert.equal(report.qmailSendRestarted, false);
    assert.match(
      report.error ?? "",
      /qmail-send is not running and no way to start it is known: start it by hand/,
    );
    assert.equal(findQmailSend(root), undefined);
    assert.equal(fs.readdirSync(path.join(env.stateDir, "journal")).length, 1, "left for recovery");
  });

  it("gives up when the stop command hangs: nothing removed, qmail-send untouched", async () => {
    const a = spam(1);
    const s = await standIn();
    env.qmailSend = { ...env.qmailSend, stop: ["sleep", "600"], stopTimeoutMs: 500 };
    const before = snapshot([a]);
    const { plan } = await preview(SPAM, { filter: SPAM, mode: "stopped" });
    const { report, outcomes } = await execute(plan.planId);
    assert.deepEqual(outcomes, []);
    assert.equal(report.notProcessed, 1);
    assert.match(report.error ?? "", /sleep 600 did not return within 500 ms/);
    assert.deepEqual(snapshot([a]), before);
    assert.equal(findQmailSend(root)?.pid, s.pid);
    assert.deepEqual([...listQuarantine(env)], [], "the copy taken before the stop is dropped");
    assert.deepEqual(fs.readdirSync(path.join(dir, "qmfleet-quarantine")), []);
  });
});

describe("one change at a time, once", () => {
  it("refuses a second purge while one runs, and runs it afterwards", async () => {
    spam(1);
    const other = q.add({ message: "Subject: x\n\ny\n", sender: "other@bad.example" });
    await standIn({ ignoreAlarm: true }); // the first purge waits out its retire time-out
    const first = await preview();
    const second = await preview({ criteria: [{ kind: "senderExact", sender: "other@bad.example" }] });
    const running = execute(first.plan.planId, { retireTimeoutMs: 1500, pollMs: 50 });
    await waitUntil(
      () => fs.existsSync(path.join(env.stateDir, "plans", `${first.plan.planId}.executing`)),
      5000,
      "the first purge",
    );
    await assert.rejects(execute(second.plan.planId), AgentLockBusyError);
    assert.equal((await running).report.purged, 1);
    const { outcomes } = await execute(second.plan.planId);
    assert.deepEqual(kinds(outcomes, other.id), ["neutralized"]);
  });

  it("runs a plan once", async () => {
    spam(1);
    const { plan } = await preview();
    await execute(plan.planId);
    await assert.rejects(execute(plan.planId), /unknown, expired or already executed/);
  });

  it("writes who, why, the plan, each outcome and the report to the audit log", async () => {
    const a = spam(1);
    const { plan } = await preview();
    await execute(plan.planId, { reason: "ticket 42" });
    env.audit?.close();
    const lines = fs
      .readFileSync(path.join(env.stateDir, "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.event),
      ["purge-preview", "purge-execute", "purge-message", "purge-report"],
    );
    assert.equal(lines[0]?.who, "tester");
    assert.deepEqual(lines[0]?.filter, SPAM);
    assert.equal(lines[1]?.reason, "ticket 42");
    assert.equal(lines[2]?.id, a.id);
    assert.equal(lines[2]?.outcome, "removed");
    assert.equal(lines[3]?.purged, 1);
    assert.equal(lines[3]?.planId, plan.planId);
    env.audit = undefined;
  });
});

function order(rel: string): number {
  return ["local", "remote", "bounce", "info", "todo", "intd", "mess"].indexOf(rel.split("/")[0] ?? "");
}
