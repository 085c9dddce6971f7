// The stand-in must behave as qmail-send does for the queue (qmail-queue.md §4, §7, §10):
// these tests hold it to that, with real files, real signals and real child processes.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { type BuiltMessage, QueueBuilder } from "../queue-builder.js";
import { type StandIn, startQmailSend, waitUntil } from "./control.js";
import { descendants, liveComm, lockHolders } from "./proc-locks.js";

let dir: string;
let root: string;
let q: QueueBuilder;
const running: StandIn[] = [];

async function start(opts: Parameters<typeof startQmailSend>[1] = {}): Promise<StandIn> {
  const s = await startQmailSend(root, opts);
  running.push(s);
  return s;
}

const exists = (rel: string) => fs.existsSync(path.join(root, rel));
const read = (rel: string) => fs.readFileSync(path.join(root, rel));
const mutex = () => path.join(root, "lock", "sendmutex");
/** chattr +i makes unlink() fail with EPERM, even for root: a real way to freeze a step. */
const chattr = (flag: "+i" | "-i", rel: string) => execFileSync("chattr", [flag, path.join(root, rel)]);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "stand-in-test-"));
  root = path.join(dir, "queue");
  q = QueueBuilder.create(root, { virtualDomains: { "vdom.example": "vp" } });
});

afterEach(async () => {
  for (const s of running.splice(0)) await s.dispose();
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("qmail-send stand-in: the lock", () => {
  it("holds lock/sendmutex under its own pid and is named qmail-send", async () => {
    const s = await start();
    assert.deepEqual(lockHolders(mutex()), [s.pid]);
    assert.equal(liveComm(s.pid), "qmail-send");
  });

  it("refuses to start while another holds the lock, and starts once it is gone", async () => {
    const first = await start();
    await assert.rejects(start(), /alert: cannot start: qmail-send is already running/);
    await first.stop();
    assert.deepEqual(lockHolders(mutex()), []);
    const second = await start();
    assert.deepEqual(lockHolders(mutex()), [second.pid]);
  });
});

describe("qmail-send stand-in: preprocessing todo/", () => {
  it("turns todo into info + local/remote on the trigger, then removes intd and todo", async () => {
    const s = await start({ locals: ["here.example"] });
    const m = q.add({
      message: "Subject: hi\n\nbody\n",
      state: "todo",
      sender: "alice@src.example",
      pid: 4242,
      recipients: [
        { address: "bob@here.example" },
        { address: "user@vdom.example" },
        { address: "r@far.example" },
      ],
    });
    assert.ok(exists(m.paths.todo) && exists(m.paths.intd));
    const before = Math.floor(Date.now() / 1000);
    const mark = s.log().length;
    s.trigger();
    await s.waitForLog(new RegExp(`^info msg ${m.id}: `), { from: mark });
    assert.deepEqual(s.log().slice(mark, mark + 2), [
      `new msg ${m.id}`,
      `info msg ${m.id}: bytes ${read(m.paths.mess).length} from <alice@src.example> qp 4242 uid 0`,
    ]);
    await waitUntil(() => !exists(m.paths.todo), 5000, "todo to go");
    assert.equal(exists(m.paths.intd), false);
    assert.deepEqual(read(m.paths.info), Buffer.from("Falice@src.example\0"));
    assert.ok(fs.statSync(path.join(root, m.paths.info)).mtimeMs / 1000 >= before);
    assert.deepEqual(read(m.paths.local), Buffer.from("Tbob@here.example\0Tvp-user@vdom.example\0"));
    assert.deepEqual(read(m.paths.remote), Buffer.from("Tr@far.example\0"));
  });

  it("reads a big-todo queue (todo/N/<id>, intd/N/<id>) and a split other than 23", async () => {
    const bigRoot = path.join(dir, "big");
    const big = QueueBuilder.create(bigRoot, { bigTodo: true, split: 7 });
    try {
      const m = big.add({
        message: "Subject: b\n\nx\n",
        state: "todo",
        recipients: [{ address: "r@far.example" }],
      });
      assert.match(m.paths.todo, /^todo\/\d\/\d+$/);
      const s = await startQmailSend(bigRoot);
      running.push(s);
      await s.waitForLog(new RegExp(`^new msg ${m.id}$`));
      await waitUntil(() => !fs.existsSync(path.join(bigRoot, m.paths.todo)), 5000, "todo to go");
      assert.equal(fs.existsSync(path.join(bigRoot, m.paths.intd)), false);
      assert.deepEqual(fs.readFileSync(path.join(bigRoot, m.paths.remote), "latin1"), "Tr@far.example\0");
    } finally {
      big.close();
    }
  });

  it("leaves intd without todo alone (a message still being written)", async () => {
    const s = await start();
    const writing = q.add({ message: "x\n", state: "being-written" });
    const committed = q.add({ message: "y\n", state: "todo" });
    const mark = s.log().length;
    s.trigger();
    await s.waitForLog(new RegExp(`^new msg ${committed.id}$`), { from: mark });
    assert.ok(exists(writing.paths.intd));
    assert.equal(exists(writing.paths.info), false);
    assert.equal(
      s.log().some((l) => l.includes(writing.id)),
      false,
    );
  });
});

describe("qmail-send stand-in: deliveries", () => {
  it("marks D on success and failure (failure also appends to bounce/), leaves T on deferral", async () => {
    const m = q.add({
      message: "Subject: d\n\nx\n",
      recipients: [
        { address: "ok@good.example" },
        { address: "later@slow.example" },
        { address: "no@bad.example" },
      ],
    });
    const s = await start({
      rules: [
        { match: "@good\\.example$", action: "succeed" },
        { match: "@bad\\.example$", action: "fail" },
      ],
    });
    // Its channel file's mtime is in the past: due at once (pqadd schedules from it).
    await waitUntil(() => s.log().filter((l) => /^delivery \d+: /.test(l)).length === 3, 10_000, "3 reports");
    // qmail-send logs a report, then marks the record: wait for the mark.
    const marked = "Dok@good.example\0Tlater@slow.example\0Dno@bad.example\0";
    await waitUntil(() => read(m.paths.remote).toString("latin1") === marked, 5000, "the records marked D");
    assert.deepEqual(
      read(m.paths.bounce).toString(),
      "<no@bad.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n",
    );
    const log = s.log();
    const delivery = (addr: string) =>
      log.find((l) => l.endsWith(` to remote ${addr}`))?.match(/delivery (\d+)/)?.[1];
    assert.ok(
      log.includes(
        `delivery ${delivery("no@bad.example")}: failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/`,
      ),
    );
    assert.ok(
      log.includes(
        `delivery ${delivery("later@slow.example")}: deferral: Sorry,_I_wasn't_able_to_establish_an_SMTP_connection._(#4.4.1)/`,
      ),
    );
    assert.ok(exists(m.paths.mess), "a T record is left: the message stays");
  });
});

describe("qmail-send stand-in: retiring a message", () => {
  it("on ALRM retires a message whose records were all marked D: log end msg, files gone", async () => {
    const m = q.add({ message: "Subject: r\n\nx\n", recipients: [{ address: "r@slow.example" }] });
    const keep = q.add({ message: "Subject: k\n\nx\n", recipients: [{ address: "k@slow.example" }] });
    const s = await start();
    await waitUntil(
      () => s.log().filter((l) => l.includes(": deferral: ")).length === 2,
      10_000,
      "2 deferrals",
    );
    // The live purge's write: the record's first byte, in place.
    const fd = fs.openSync(path.join(root, m.paths.remote), "r+");
    fs.writeSync(fd, "D", 0);
    fs.closeSync(fd);
    const mark = s.log().length;
    s.alarm();
    await s.waitForLog(new RegExp(`^end msg ${m.id}$`), { from: mark });
    await waitUntil(() => !exists(m.paths.mess), 5000, "mess to go");
    for (const kind of ["info", "remote", "local", "bounce"] as const)
      assert.equal(exists(m.paths[kind]), false);
    assert.ok(exists(keep.paths.mess) && exists(keep.paths.remote), "the other message stays queued");
    assert.equal(
      s.log().some((l) => l.startsWith("warning:")),
      false,
    );
  });

  it("removes the channel file first, then bounce and info, and mess last", async () => {
    // Freeze qmail-send at each step with an immutable file (chattr +i makes unlink fail).
    const m = q.add({
      message: "Subject: o\n\nx\n",
      sender: "s@src.example",
      recipients: [{ address: "gone@far.example", done: true }],
      bounce: "<gone@far.example>:\nno.\n\n",
    });
    chattr("+i", m.paths.remote);
    chattr("+i", m.paths.info);
    try {
      await retireThroughFrozenSteps(m);
    } finally {
      for (const rel of [m.paths.remote, m.paths.info]) if (exists(rel)) chattr("-i", rel);
    }
  });

  async function retireThroughFrozenSteps(m: BuiltMessage): Promise<void> {
    const s = await start({ sysfailMs: 300 });
    await s.waitForLog(new RegExp(`^warning: unable to unlink ${m.paths.remote}; will try again later$`));
    assert.ok(
      exists(m.paths.info) && exists(m.paths.bounce) && exists(m.paths.mess),
      "nothing after remote yet",
    );

    chattr("-i", m.paths.remote);
    await s.waitForLog(new RegExp(`^warning: unable to unlink ${m.paths.info}; will try again later$`));
    assert.equal(exists(m.paths.remote), false);
    assert.equal(exists(m.paths.bounce), false, "bounce handled before info");
    assert.ok(exists(m.paths.mess), "mess outlives info");
    assert.ok(s.log().includes(`bounce msg ${m.id} qp ${s.pid}`));

    chattr("-i", m.paths.info);
    await waitUntil(() => !exists(m.paths.mess), 10_000, "mess to go last");
    assert.equal(exists(m.paths.info), false);
  }

  it("warns about a file deleted under it, the way a real qmail-send does", async () => {
    const m = q.add({ message: "Subject: w\n\nx\n", recipients: [{ address: "r@slow.example" }] });
    const s = await start();
    await s.waitForLog(/: deferral: /);
    // The wrong way (qmHandle's under a running qmail-send): unlink the files.
    for (const kind of ["mess", "info", "remote"] as const) fs.unlinkSync(path.join(root, m.paths[kind]));
    const mark = s.log().length;
    s.alarm();
    await s.waitForLog(new RegExp(`^warning: trouble opening ${m.paths.remote}; will try again later$`), {
      from: mark,
    });
  });
});

describe("qmail-send stand-in: TERM", () => {
  it("exits at once when idle, releasing the lock", async () => {
    const s = await start();
    s.signal("SIGTERM");
    await s.waitForLog(/^status: exiting$/);
    await s.waitForExit();
    assert.deepEqual(lockHolders(mutex()), []);
  });

  it("waits for a delivery in progress; TERM to its qmail-remote makes it a deferral, then it exits", async () => {
    const m = q.add({ message: "Subject: h\n\nx\n", recipients: [{ address: "r@tarpit.example" }] });
    const s = await start({ rules: [{ match: "@tarpit\\.example$", action: "hang" }] });
    await s.waitForLog(/^starting delivery 1: /);
    const remote = await waitUntil(() => s.deliveries()[0], 5000, "qmail-remote to run");
    // qmail-send -> qmail-rspawn -> qmail-remote, as on a real host.
    const tree = descendants(s.pid);
    const rspawn = tree.find((p) => p.comm === "qmail-rspawn");
    assert.ok(rspawn);
    assert.ok(descendants(rspawn.pid).some((p) => p.pid === remote && p.comm === "qmail-remote"));

    const mark = s.log().length;
    s.signal("SIGTERM");
    // Still there, waiting for its delivery in progress.
    await s.waitForLog(/^status: local 0\/10 remote 1\/20 exitasap$/, { from: mark });
    assert.ok(s.running());
    assert.deepEqual(lockHolders(mutex()), [s.pid]);
    process.kill(remote, "SIGTERM");
    await s.waitForLog(/^status: exiting$/, { from: mark });
    assert.deepEqual(s.log().slice(mark), [
      "status: local 0/10 remote 1/20 exitasap",
      "delivery 1: deferral: qmail-remote_crashed./",
      "status: local 0/10 remote 0/20 exitasap",
      "status: exiting",
    ]);
    await s.waitForExit();
    assert.deepEqual(lockHolders(mutex()), []);
    assert.deepEqual(read(m.paths.remote), Buffer.from("Tr@tarpit.example\0"), "queue intact");
    // pqfinish: the next retry time is kept in the channel file's mtime.
    assert.ok(fs.statSync(path.join(root, m.paths.remote)).mtimeMs > Date.now());
  });

  it("can be told to ignore TERM (only KILL stops it)", async () => {
    const s = await start({ ignoreTerm: true });
    s.signal("SIGTERM");
    s.signal("SIGHUP");
    // A trigger makes it run its loop after the TERM: it is still there and holds the lock.
    const m = q.add({ message: "x\n", state: "todo" });
    const mark = s.log().length;
    s.trigger();
    await s.waitForLog(new RegExp(`^new msg ${m.id}$`), { from: mark });
    assert.ok(s.running());
    assert.deepEqual(lockHolders(mutex()), [s.pid]);
    s.signal("SIGKILL");
    await s.waitForExit();
    assert.deepEqual(lockHolders(mutex()), []);
  });
});

describe("qmail-send stand-in: started again from its command line", () => {
  it("takes the lock under a new pid when its /proc/PID/cmdline is run again", async () => {
    const s = await start();
    const argv = fs.readFileSync(`/proc/${s.pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    s.signal("SIGTERM");
    await s.waitForExit();
    const [cmd, ...args] = argv;
    assert.ok(cmd);
    spawn(cmd, args, { detached: true, stdio: "ignore" }).unref();
    const next = await s.successor();
    running.push(next);
    assert.notEqual(next.pid, s.pid);
    assert.deepEqual(lockHolders(mutex()), [next.pid]);
    assert.equal(liveComm(next.pid), "qmail-send");
    await next.waitForLog(/^status: local/, { from: s.log().indexOf("status: exiting") });
  });
});
