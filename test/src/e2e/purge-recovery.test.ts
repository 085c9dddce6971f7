// An agent killed in the middle of a stopped purge, after it stopped qmail-send: the next
// `qmfleet-agent serve` on that host reads the purge's journal at start, starts qmail-send again
// the way it was running, and logs the interrupted plan. Real processes throughout: the purge
// runs in `qmfleet-agent local` (the same engine, the same state directory), is SIGKILLed while
// its stop command holds it (so the moment is certain, not raced), and the qmail-send stand-in is
// the qmail-send that goes down and comes back.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FleetCertificates, generateFleetCertificates } from "../certs.js";
import { lockHolders, type StandIn, startQmailSend, waitUntil } from "../qmail-send/index.js";
import { type BuiltMessage, QueueBuilder } from "../queue-builder.js";
import { type AgentProcess, REPO_ROOT, startAgentProcess } from "./processes.js";

describe("an agent killed while qmail-send was stopped for a purge", () => {
  let dir: string;
  let certs: FleetCertificates;
  let root: string;
  let state: string;
  let qs: StandIn;
  let purge: ChildProcess | undefined;
  let agent: AgentProcess | undefined;
  const messages: BuiltMessage[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-e2e-recovery-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    root = join(dir, "queue");
    state = join(dir, "state");
    const q = QueueBuilder.create(root);
    for (let i = 0; i < 3; i++) {
      messages.push(
        q.add({
          message: `Subject: failure notice\n\nbounce ${i}\n`,
          sender: "",
          recipients: [{ address: "support@abcde.net", channel: "remote" }],
        }),
      );
    }
    q.close();
    qs = await startQmailSend(root);
  });

  after(async () => {
    purge?.kill("SIGKILL");
    await agent?.stop();
    await qs.dispose();
    const stopper = join(dir, "stopper.pid");
    if (existsSync(stopper)) {
      try {
        process.kill(Number(readFileSync(stopper, "utf8")), "SIGKILL");
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("is noticed at the next start: qmail-send runs again, the plan is reported, nothing was removed", async () => {
    // The configured stop: TERM to qmail-send, then hold the purge here (as a stop command that
    // hangs would) until the agent is killed.
    const stop = join(dir, "stop-qmail-send");
    writeFileSync(
      stop,
      `#!/bin/sh\necho $$ > '${join(dir, "stopper.pid")}'\nkill -TERM ${qs.pid}\nexec sleep 600\n`,
      { mode: 0o755 },
    );
    purge = spawn(
      process.execPath,
      [
        "--conditions=qmfleet-source",
        "--import",
        "tsx",
        join(REPO_ROOT, "agent", "src", "bin", "qmfleet-agent.ts"),
        "local",
        "--queue",
        root,
        "--state-dir",
        state,
        "--qmail-send-stop",
        stop,
        "--stop-timeout",
        "600",
        "-Sfailure notice",
        "--stopped",
        "--yes",
        "--reason",
        "killed midway",
      ],
      { stdio: "ignore" },
    );
    await qs.waitForExit(30_000);
    await waitUntil(() => existsSync(join(dir, "stopper.pid")), 10_000, "the stop command to run");
    purge.kill("SIGKILL");
    await new Promise((resolve) => purge?.once("exit", resolve));
    assert.deepEqual(lockHolders(join(root, "lock", "sendmutex")), [], "qmail-send is down");
    const journals = readdirSync(join(state, "journal"));
    assert.equal(journals.length, 1, "the purge left its journal");
    const planId = (journals[0] ?? "").replace(/\.jsonl$/, "");

    agent = await startAgentProcess({ queue: root, certs, stateDir: state });
    assert.match(
      agent.log(),
      new RegExp(
        `recovered plan ${planId} on ${root}, interrupted \\(agent pid \\d+, started \\S+, last step stopping\\): 0 messages had been removed, 0 failed, 0 copies kept in the quarantine; started qmail-send again \\(pid \\d+\\)`,
      ),
    );
    const next = await qs.successor();
    assert.deepEqual(lockHolders(join(root, "lock", "sendmutex")), [next.pid]);
    assert.deepEqual(readdirSync(join(state, "journal")), [], "the journal is resolved");
    for (const m of messages) assert.ok(existsSync(join(root, m.paths.mess)), "nothing was removed");
    // The copies the purge took before stopping qmail-send are dropped with their staging area.
    assert.deepEqual(readdirSync(join(dir, "qmfleet-quarantine")), []);
    const recovery = readFileSync(join(state, "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; planId?: string })
      .find((a) => a.event === "purge-recovery");
    assert.equal(recovery?.planId, planId);
  });
});
