import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { AgentLockBusyError, acquireAgentLock, agentLockFile, withAgentLock } from "./agent-lock.js";

let dir: string;
let stateDir: string;
let queue: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-lock-"));
  stateDir = path.join(dir, "state");
  queue = path.join(dir, "queue");
  fs.mkdirSync(queue);
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check());
};

describe("agent lock", () => {
  it("refuses a second change in the same process, naming the first, until it is released", () => {
    const first = acquireAgentLock(stateDir, queue, "purge plan p1");
    assert.throws(
      () => acquireAgentLock(stateDir, queue, "purge plan p2"),
      (e: unknown) =>
        e instanceof AgentLockBusyError &&
        e.holder?.purpose === "purge plan p1" &&
        e.holder.pid === process.pid &&
        /another change to this queue is in progress \(purge plan p1/.test(e.message),
    );
    first.release();
    const second = acquireAgentLock(stateDir, queue, "purge plan p2");
    second.release();
  });

  it("is one lock per queue, whatever path names it", () => {
    fs.symlinkSync(queue, path.join(dir, "alias"));
    assert.equal(agentLockFile(stateDir, queue), agentLockFile(stateDir, path.join(dir, "alias")));
    const other = path.join(dir, "other-queue");
    fs.mkdirSync(other);
    const a = acquireAgentLock(stateDir, queue, "a");
    const b = acquireAgentLock(stateDir, other, "b");
    assert.throws(() => acquireAgentLock(stateDir, path.join(dir, "alias"), "c"), AgentLockBusyError);
    a.release();
    b.release();
  });

  it("excludes another process, and is free as soon as that process is killed -9", async () => {
    const file = agentLockFile(stateDir, queue);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, "");
    // --close: only flock(1) itself holds the lock, not the sleep it runs.
    const holder = spawn("flock", ["--exclusive", "--close", file, "sleep", "600"], {
      stdio: "ignore",
      detached: true,
    });
    await waitFor(() => fs.readFileSync("/proc/locks", "utf8").includes(`:${fs.statSync(file).ino} `));
    assert.throws(() => acquireAgentLock(stateDir, queue, "purge"), AgentLockBusyError);
    const exited = new Promise((r) => holder.on("exit", r));
    process.kill(-(holder.pid ?? 0), "SIGKILL");
    await exited;
    acquireAgentLock(stateDir, queue, "purge").release();
  });

  it("withAgentLock releases the lock when the work fails", async () => {
    await assert.rejects(
      withAgentLock(stateDir, queue, "retry", async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await withAgentLock(stateDir, queue, "retry", async () => 42), 42);
  });
});
