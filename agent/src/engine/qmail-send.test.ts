// qmail-send control against the stand-in (a real process holding lock/sendmutex, with real
// deliveries in progress as child processes) and real lock holders made with perl and flock(1).

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  attachQmailSend,
  lockHolders,
  prepareQmailSend,
  QueueBuilder,
  type StandIn,
  type StandInOptions,
  startQmailSend,
  startSupervise,
  waitUntil,
} from "@qmfleet/test";
import {
  alarmQmailSend,
  type ControlPlan,
  DEFAULT_QMAIL_SEND_CONFIG,
  describeStart,
  findQmailSend,
  planControl,
  type QmailSendConfig,
  QmailSendControlError,
  startQmailSend as startAgain,
  stopQmailSend,
} from "./qmail-send.js";

let dir: string;
let root: string;
let q: QueueBuilder;
const cleanups: Array<() => Promise<void> | void> = [];

async function standIn(opts: StandInOptions = {}): Promise<StandIn> {
  const s = await startQmailSend(root, opts);
  cleanups.push(() => s.dispose());
  return s;
}

function config(over: Partial<QmailSendConfig> = {}): QmailSendConfig {
  return {
    ...DEFAULT_QMAIL_SEND_CONFIG,
    stopTimeoutMs: 3000,
    escalateWaitMs: 3000,
    startTimeoutMs: 20_000,
    ...over,
  };
}

/** A process of ours that holds `file` locked, started through perl; resolves once it holds it. */
async function perlHolder(script: string, file: string): Promise<ChildProcess> {
  const child = spawn("perl", ["-e", script, file], { stdio: ["ignore", "pipe", "inherit"], detached: true });
  cleanups.push(() => {
    if (child.pid) process.kill(-child.pid, "SIGKILL");
  });
  await once(child.stdout as NodeJS.ReadableStream, "data");
  return child;
}

const mutex = () => path.join(root, "lock", "sendmutex");

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmail-send-control-"));
  root = path.join(dir, "queue");
  q = QueueBuilder.create(root, {});
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("findQmailSend", () => {
  it("names the holder of lock/sendmutex, and nobody once it is gone", async () => {
    const s = await standIn();
    assert.deepEqual(findQmailSend(root), { pid: s.pid, lock: "FLOCK" });
    await s.stop();
    assert.equal(findQmailSend(root), undefined);
  });

  it("is undefined when there is no lock/sendmutex at all", () => {
    fs.unlinkSync(mutex());
    assert.equal(findQmailSend(root), undefined);
  });

  it("finds a POSIX (fcntl) lock holder too, as qmail built without flock takes it", async () => {
    // struct flock on x86_64/aarch64: short type, short whence, (pad) off_t start, off_t len, pid_t pid.
    const holder = await perlHolder(
      'use Fcntl; open(F, ">>", $ARGV[0]) or die; my $lk = pack("s s x4 q q l x4", F_WRLCK, 0, 0, 0, 0); fcntl(F, F_SETLK, $lk) or die "$!"; $| = 1; print "held\\n"; sleep 600',
      mutex(),
    );
    assert.deepEqual(findQmailSend(root), { pid: holder.pid, lock: "POSIX" });
  });

  it("does not take a process waiting for the lock for its holder", async () => {
    const s = await standIn();
    const waiter = spawn("flock", ["-x", mutex(), "sleep", "600"], { detached: true, stdio: "ignore" });
    cleanups.push(() => {
      if (waiter.pid) process.kill(-waiter.pid, "SIGKILL");
    });
    await waitUntil(() => fs.readFileSync("/proc/locks", "utf8").includes(" -> FLOCK"), 5000, "the waiter");
    assert.equal(findQmailSend(root)?.pid, s.pid);
    await s.stop();
    // Now the waiter has it: the answer follows the kernel, not a name.
    await waitUntil(() => findQmailSend(root)?.pid === waiter.pid, 5000, "the waiter to hold the lock");
  });

  it("finds the process that holds the lock when the one /proc/locks names is gone", async () => {
    // perl takes the lock, forks a child that keeps the descriptor, and exits.
    const parent = spawn(
      "perl",
      [
        "-e",
        'use Fcntl qw(:flock F_SETFD); open(my $f, ">>", $ARGV[0]) or die; flock($f, LOCK_EX) or die; fcntl($f, F_SETFD, 0); my $pid = fork(); if ($pid) { $| = 1; print "$pid\\n"; exit 0 } exec "sleep", "600"',
        mutex(),
      ],
      { stdio: ["ignore", "pipe", "inherit"], detached: true },
    );
    const [out] = await once(parent.stdout as NodeJS.ReadableStream, "data");
    const child = Number(String(out).trim());
    cleanups.push(() => {
      process.kill(child, "SIGKILL");
    });
    await once(parent, "exit");
    assert.deepEqual(lockHolders(mutex()), [parent.pid], "the kernel still names the dead locker");
    assert.equal(findQmailSend(root)?.pid, child);
  });
});

describe("alarmQmailSend", () => {
  it("sends ALRM to qmail-send: a deferred message is retried at once", async () => {
    const m = q.add({ message: "Subject: a\n\nx\n", recipients: [{ address: "r@slow.example" }] });
    const s = await standIn();
    await s.waitForLog(new RegExp(`^starting delivery 1: msg ${m.id} `));
    await s.waitForLog(/^delivery 1: deferral: /);
    assert.equal(alarmQmailSend(root), s.pid);
    await s.waitForLog(new RegExp(`^starting delivery 2: msg ${m.id} to remote r@slow.example$`));
  });

  it("signals nobody when qmail-send does not run", () => {
    assert.equal(alarmQmailSend(root), undefined);
  });
});

describe("planControl", () => {
  it("without a supervisor: stop by TERM, start again from its own command line", async () => {
    const s = await standIn();
    const plan = planControl(root, s.pid, config());
    assert.deepEqual(plan.stop, { kind: "signal" });
    assert.equal(plan.start?.kind, "respawn");
    const argv = fs.readFileSync(`/proc/${s.pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    assert.deepEqual(plan.start?.kind === "respawn" ? plan.start.launch.argv : [], argv);
  });

  it("a bare qmail-send (started by qmail-start) is started with <qmail home>/rc, or by hand without one", async () => {
    // The command line qmail-start gives it: argv is just "qmail-send" (perl's $0 sets it so).
    const fake = await perlHolder('$0 = "qmail-send"; $| = 1; print "up\\n"; sleep 600', mutex());
    assert.equal(fs.readFileSync(`/proc/${fake.pid}/cmdline`, "utf8"), "qmail-send\0");
    const pid = fake.pid ?? 0;
    assert.equal(planControl(root, pid, config()).start, null);
    fs.writeFileSync(path.join(dir, "rc"), "#!/bin/sh\nexec true\n", { mode: 0o755 });
    const plan = planControl(root, pid, config());
    assert.equal(plan.start?.kind === "respawn" ? plan.start.launch.argv[0] : "", path.join(dir, "rc"));
  });

  it("uses configured commands over detection", async () => {
    const s = await standIn();
    const plan = planControl(
      root,
      s.pid,
      config({ stop: ["svc", "-d", "/service/x"], start: ["svc", "-u", "/service/x"] }),
    );
    assert.deepEqual(plan.stop, { kind: "command", argv: ["svc", "-d", "/service/x"] });
    assert.deepEqual(plan.start, { kind: "command", argv: ["svc", "-u", "/service/x"] });
  });
});

describe("stopQmailSend / startQmailSend", () => {
  async function plan(
    s: StandIn,
    over: Partial<QmailSendConfig> = {},
  ): Promise<[ControlPlan, QmailSendConfig]> {
    const c = config(over);
    return [planControl(root, s.pid, c), c];
  }

  it("stops an idle qmail-send by TERM and starts it again from its command line", async () => {
    const s = await standIn();
    const [p, c] = await plan(s);
    const stopped = await stopQmailSend(root, p, c);
    assert.equal(stopped.stoppedBy, "stop");
    assert.equal(findQmailSend(root), undefined);
    assert.ok(s.log().includes("status: exiting"));
    const started = await startAgain(root, p, c);
    assert.equal(started.alreadyRunning, false);
    const next = await s.successor();
    cleanups.push(() => next.dispose());
    assert.equal(started.pid, next.pid);
    assert.notEqual(next.pid, s.pid);
  });

  it("does not start a qmail-send that is already running", async () => {
    const s = await standIn();
    const [p, c] = await plan(s);
    assert.deepEqual(await startAgain(root, p, c), {
      pid: s.pid,
      alreadyRunning: true,
      how: describeStart(p.start),
    });
  });

  it("escalates on time-out: TERM to the deliveries in progress, which defer, and qmail-send exits", async () => {
    const m = q.add({ message: "Subject: h\n\nx\n", recipients: [{ address: "r@tarpit.example" }] });
    const s = await standIn({ rules: [{ match: "tarpit", action: "hang" }] });
    await waitUntil(() => s.deliveries()[0], 5000, "a delivery in progress");
    const [p, c] = await plan(s, { stopTimeoutMs: 500 });
    const stopped = await stopQmailSend(root, p, c);
    assert.equal(stopped.stoppedBy, "deliveries-terminated");
    assert.match(stopped.notes.join("\n"), /TERM to its 1 deliveries in progress \(qmail-remote \d+\)/);
    assert.ok(s.log().includes("delivery 1: deferral: qmail-remote_crashed./"));
    assert.deepEqual(fs.readFileSync(path.join(root, m.paths.remote), "latin1"), "Tr@tarpit.example\0");
  });

  it("KILLs a qmail-send that ignores TERM once its deliveries are gone", async () => {
    const s = await standIn({ ignoreTerm: true });
    const [p, c] = await plan(s, { stopTimeoutMs: 300, escalateWaitMs: 300 });
    const stopped = await stopQmailSend(root, p, c);
    assert.equal(stopped.stoppedBy, "killed");
    assert.equal(findQmailSend(root), undefined);
  });

  it("gives up without escalation, and starts qmail-send again once it has exited", async () => {
    q.add({ message: "Subject: h\n\nx\n", recipients: [{ address: "r@tarpit.example" }] });
    const s = await standIn({ rules: [{ match: "tarpit", action: "hang" }] });
    const remote = await waitUntil(() => s.deliveries()[0], 5000, "a delivery in progress");
    const [p, c] = await plan(s, { stopTimeoutMs: 300, escalate: "none" });
    const error = await stopQmailSend(root, p, c).then(
      () => assert.fail("stop should have given up"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof QmailSendControlError);
    assert.match(error.message, /still running after 300 ms .* escalate is none/);
    assert.match(
      error.notes.join("\n"),
      /got TERM and will exit when its deliveries end; it will be started again/,
    );
    // The delivery ends (here: killed); qmail-send exits; the watcher starts it again.
    process.kill(remote, "SIGTERM");
    const next = await s.successor();
    cleanups.push(() => next.dispose());
    assert.deepEqual(lockHolders(mutex()), [next.pid]);
  });

  it("kills a stop command that hangs and leaves a running qmail-send running", async () => {
    const s = await standIn();
    const [p, c] = await plan(s, { stop: ["sleep", "600"], stopTimeoutMs: 500 });
    await assert.rejects(stopQmailSend(root, p, c), /sleep 600 did not return within 500 ms and was killed/);
    assert.deepEqual(lockHolders(mutex()), [s.pid]);
    assert.ok(!s.log().some((l) => l.includes("exitasap") || l === "status: exiting"));
  });

  it("reports a stop command that fails, without forcing qmail-send down", async () => {
    const s = await standIn();
    const [p, c] = await plan(s, { stop: ["sh", "-c", "echo no such service >&2; exit 3"] });
    await assert.rejects(
      stopQmailSend(root, p, c),
      /exited 3: no such service; qmail-send still holds lock\/sendmutex/,
    );
    assert.deepEqual(lockHolders(mutex()), [s.pid]);
  });

  it("does not take a stop command's word: one that returns 0 while qmail-send runs leads to escalation", async () => {
    const s = await standIn();
    const [p, c] = await plan(s, { stop: ["true"], stopTimeoutMs: 300, escalateWaitMs: 300 });
    const stopped = await stopQmailSend(root, p, c);
    assert.equal(stopped.stoppedBy, "killed", "nothing but KILL stopped it: TERM was never sent");
    assert.ok(!s.log().includes("status: exiting"));
  });

  it("a stop command that works is enough", async () => {
    const s = await standIn();
    const [p, c] = await plan(s, { stop: ["kill", "-TERM", String(s.pid)] });
    const stopped = await stopQmailSend(root, p, c);
    assert.equal(stopped.stoppedBy, "stop");
    assert.ok(s.log().includes("status: exiting"));
  });
});

describe("qmail-send under supervise", () => {
  async function supervised() {
    const prepared = prepareQmailSend(root);
    const sv = await startSupervise(
      path.join(dir, "service", "qmail-send"),
      prepared.command,
      prepared.config.logFile,
    );
    cleanups.push(() => {
      sv.kill();
      fs.rmSync(prepared.workDir, { recursive: true, force: true });
    });
    return { sv, s: await attachQmailSend(prepared) };
  }

  it("is detected, stopped with svc -d (it stays down) and started with svc -u", async () => {
    const { sv, s } = await supervised();
    const c = config();
    const p = planControl(root, s.pid, c);
    assert.deepEqual(p.stop, { kind: "supervise", dir: sv.serviceDir });
    assert.match(p.detected, /runs under supervise/);
    await stopQmailSend(root, p, c);
    assert.equal(sv.want(), "down");
    assert.equal(findQmailSend(root), undefined);
    const started = await startAgain(root, p, c);
    assert.equal(sv.want(), "up");
    assert.notEqual(started.pid, s.pid);
  });

  it("TERM alone is undone by the supervisor: reported, not taken for a stop", async () => {
    const { s } = await supervised();
    // settleMs: how long the lock must stay free; the test supervise restarts within ~0.1 s.
    const c = config({ stop: "signal", settleMs: 5000 });
    const p = planControl(root, s.pid, c);
    await assert.rejects(stopQmailSend(root, p, c), /restarted at once .* configure the stop command/);
    assert.notEqual(findQmailSend(root)?.pid, s.pid);
  });
});
