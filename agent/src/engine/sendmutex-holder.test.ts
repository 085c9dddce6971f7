import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { findQmailSend } from "./qmail-send.js";

// Holds an exclusive flock on the file like qmail-send holds lock/sendmutex, in its own process
// (perl, so the lock holder's pid is the process we started), and says when it has it.
async function holdLock(file: string): Promise<ChildProcess> {
  const holder = spawn(
    "perl",
    [
      "-e",
      'use Fcntl ":flock"; open(F, ">>", $ARGV[0]) or die; flock(F, LOCK_EX) or die; $| = 1; print "held\\n"; sleep 600',
      file,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await once(holder.stdout as NodeJS.ReadableStream, "data");
  return holder;
}

describe("findQmailSend (lock/sendmutex holder from /proc/locks)", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "qmfleet-sendmutex-"));
    await mkdir(join(root, "lock"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("names the process holding lock/sendmutex", async () => {
    await writeFile(join(root, "lock", "sendmutex"), "");
    const holder = await holdLock(join(root, "lock", "sendmutex"));
    try {
      assert.equal(findQmailSend(root)?.pid, holder.pid);
    } finally {
      holder.kill("SIGTERM");
      await once(holder, "exit");
    }
    // The twin: the same file, nobody holding it.
    assert.equal(findQmailSend(root), undefined);
  });

  it("is not fooled by a lock on another file", async () => {
    await writeFile(join(root, "lock", "sendmutex"), "");
    await writeFile(join(root, "lock", "other"), "");
    const holder = await holdLock(join(root, "lock", "other"));
    try {
      assert.equal(findQmailSend(root), undefined);
    } finally {
      holder.kill("SIGTERM");
      await once(holder, "exit");
    }
  });

  it("reports not running when there is no sendmutex at all", async () => {
    const bare = await mkdtemp(join(tmpdir(), "qmfleet-nolock-"));
    try {
      assert.equal(findQmailSend(bare), undefined);
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });
});
