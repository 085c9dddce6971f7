// qmHandle -s across a fleet, end to end: three real qmfleet-agent processes serving queues the
// queue builder wrote, over mutual TLS on loopback, plus an agent that is down; asked through the
// controller library and through the qmfleet command as a child process. Every number is checked
// against what the builder wrote.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectFleet, fleetStats, loadInventory } from "@qmfleet/controller";
import type { QueueStats } from "@qmfleet/proto";
import { type FleetCertificates, generateFleetCertificates } from "../certs.js";
import { generateMixedQueue, type MixedQueueSummary } from "../mixed-queue.js";
import { buildQueue } from "../queue-builder.js";
import {
  type AgentProcess,
  closedLoopbackPort,
  runCli,
  startAgentProcess,
  writeInventory,
} from "./processes.js";

interface JsonHost {
  name: string;
  state: string;
  error?: string;
  stats?: QueueStats;
}

/** The counters the builder knows, as the agent must report them. */
function expectedStats(summary: MixedQueueSummary): Partial<QueueStats> {
  return {
    messagesInQueue: summary.messages,
    notPreprocessed: summary.todo,
    preprocessed: summary.preprocessed,
    withLocal: summary.withLocal,
    withRemote: summary.withRemote,
    bouncing: summary.bouncing,
    beingWritten: 0,
    bytes: summary.bytes,
    oldestBirthUnix: summary.oldestBirth,
  };
}

function pick(stats: QueueStats | undefined, like: Partial<QueueStats>): Partial<QueueStats> {
  assert.ok(stats, "no stats");
  return Object.fromEntries(Object.keys(like).map((k) => [k, stats[k as keyof QueueStats]]));
}

describe("fleet statistics end to end", () => {
  let dir: string;
  let certs: FleetCertificates;
  let inventory: string;
  let builtAt: number;
  const agents: AgentProcess[] = [];
  const summaries = new Map<string, MixedQueueSummary>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-e2e-stats-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    builtAt = Math.floor(Date.now() / 1000);
    summaries.set("mx1", generateMixedQueue(join(dir, "mx1"), { count: 400, seed: 1, now: builtAt }));
    summaries.set(
      "mx2",
      generateMixedQueue(join(dir, "mx2"), { count: 250, seed: 2, split: 7, bigTodo: true, now: builtAt }),
    );
    buildQueue(join(dir, "mx3"), {});
    for (const name of ["mx1", "mx2", "mx3"]) {
      agents.push(await startAgentProcess({ queue: join(dir, name), certs }));
    }
    inventory = await writeInventory(join(dir, "fleet.yaml"), certs, [
      { name: "mx1", address: agents[0]?.address ?? "", tags: ["tokyo"] },
      { name: "mx2", address: agents[1]?.address ?? "", tags: ["tokyo"] },
      { name: "mx3", address: agents[2]?.address ?? "", tags: ["osaka"] },
      { name: "down", address: `localhost:${await closedLoopbackPort()}`, tags: ["osaka"] },
    ]);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it("controller: every host's numbers equal what was written; the down host is unreachable", async () => {
    const inv = await loadInventory(inventory);
    const clients = await connectFleet(inv);
    try {
      const arrived: string[] = [];
      const fleet = await fleetStats(inv.hosts, clients, {
        timeoutMs: 30_000,
        onHost: (o) => arrived.push(o.host.name),
      });
      assert.deepEqual(arrived.sort(), ["down", "mx1", "mx2", "mx3"]);
      const [mx1, mx2, mx3, down] = fleet.hosts;
      assert.equal(mx1?.state, "ok", mx1?.error);
      assert.deepEqual(
        pick(mx1?.value, expectedStats(summaries.get("mx1") as MixedQueueSummary)),
        expectedStats(summaries.get("mx1") as MixedQueueSummary),
      );
      assert.equal(mx2?.state, "ok", mx2?.error);
      assert.deepEqual(
        pick(mx2?.value, expectedStats(summaries.get("mx2") as MixedQueueSummary)),
        expectedStats(summaries.get("mx2") as MixedQueueSummary),
      );
      assert.equal(mx3?.state, "ok", mx3?.error);
      assert.equal(mx3?.value?.messagesInQueue, 0);
      assert.equal(down?.state, "unreachable");
      assert.match(String(down?.error), /^UNAVAILABLE: /);
      assert.equal(fleet.notOk, 1);
      const s1 = summaries.get("mx1") as MixedQueueSummary;
      const s2 = summaries.get("mx2") as MixedQueueSummary;
      assert.equal(fleet.total.messagesInQueue, s1.messages + s2.messages);
      assert.equal(fleet.total.bytes, s1.bytes + s2.bytes);
      assert.equal(fleet.total.oldestBirthUnix, Math.min(s1.oldestBirth, s2.oldestBirth));
      // The age depends on when the agent looked: between the build and now.
      const oldest = Math.min(s1.oldestBirth, s2.oldestBirth);
      assert.ok(fleet.total.oldestAgeSeconds >= builtAt - oldest);
      assert.ok(fleet.total.oldestAgeSeconds <= Math.ceil(Date.now() / 1000) - oldest);
    } finally {
      clients.close();
    }
  });

  it("qmfleet -s --json: one document, the same numbers, the down host listed, exit 2", async () => {
    const { code, stdout, stderr } = await runCli(["--inventory", inventory, "-s", "--json"]);
    assert.equal(code, 2, stderr);
    const doc = JSON.parse(stdout) as { hosts: JsonHost[]; total: QueueStats };
    assert.deepEqual(
      doc.hosts.map((h) => [h.name, h.state]),
      [
        ["mx1", "ok"],
        ["mx2", "ok"],
        ["mx3", "ok"],
        ["down", "unreachable"],
      ],
    );
    for (const name of ["mx1", "mx2"]) {
      const expected = expectedStats(summaries.get(name) as MixedQueueSummary);
      assert.deepEqual(pick(doc.hosts.find((h) => h.name === name)?.stats, expected), expected, name);
    }
    assert.equal(doc.hosts[3]?.stats, undefined);
    assert.match(String(doc.hosts[3]?.error), /^UNAVAILABLE: /);
    const s1 = summaries.get("mx1") as MixedQueueSummary;
    const s2 = summaries.get("mx2") as MixedQueueSummary;
    assert.deepEqual(
      [
        doc.total.messagesInQueue,
        doc.total.notPreprocessed,
        doc.total.withLocal,
        doc.total.withRemote,
        doc.total.bouncing,
        doc.total.bytes,
      ],
      [
        s1.messages + s2.messages,
        s1.todo + s2.todo,
        s1.withLocal + s2.withLocal,
        s1.withRemote + s2.withRemote,
        s1.bouncing + s2.bouncing,
        s1.bytes + s2.bytes,
      ],
    );
    assert.match(stderr, /^qmfleet: down: unreachable: UNAVAILABLE: /m);
  });

  it("qmfleet -s --json: exit 0 when every targeted host answers (the twin)", async () => {
    const { code, stdout, stderr } = await runCli([
      "--inventory",
      inventory,
      "-s",
      "--json",
      "--tags",
      "tokyo",
    ]);
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as { hosts: JsonHost[]; total: QueueStats };
    assert.deepEqual(
      doc.hosts.map((h) => h.state),
      ["ok", "ok"],
    );
    assert.equal(stderr, "");
  });

  it("qmfleet -s: a table with a row per host and the fleet total", async () => {
    const { code, stdout } = await runCli(["--inventory", inventory, "-s", "--hosts", "mx1,mx3,down"]);
    assert.equal(code, 2);
    const lines = stdout.trimEnd().split("\n");
    assert.match(
      lines[0] ?? "",
      /^host +state +messages +not preprocessed +local +remote +bouncing +bytes +oldest age$/,
    );
    const s1 = summaries.get("mx1") as MixedQueueSummary;
    assert.match(
      lines[1] ?? "",
      new RegExp(
        `^mx1 +ok +${s1.messages} +${s1.todo} +${s1.withLocal} +${s1.withRemote} +${s1.bouncing} +${s1.bytes} +\\d+d \\d+h$`,
      ),
    );
    assert.match(lines[2] ?? "", /^mx3 +ok +0 +0 +0 +0 +0 +0 +-$/);
    assert.match(lines[3] ?? "", /^down +unreachable +- +- +- +- +- +- +-$/);
    assert.match(lines[4] ?? "", new RegExp(`^TOTAL +2/3 ok +${s1.messages} +${s1.todo} `));
  });

  it("qmfleet -s with a certificate without a role: every host denied, exit 2", async () => {
    const noRole = await writeInventory(
      join(dir, "no-role.yaml"),
      certs,
      [{ name: "mx1", address: agents[0]?.address ?? "" }],
      certs.noRole,
    );
    const { code, stdout } = await runCli(["--inventory", noRole, "-s", "--json"]);
    assert.equal(code, 2);
    const doc = JSON.parse(stdout) as { hosts: JsonHost[] };
    assert.equal(doc.hosts[0]?.state, "denied");
    assert.match(
      String(doc.hosts[0]?.error),
      /^PERMISSION_DENIED: certificate CN=no-role.* carries no qmfleet role/,
    );
  });

  it("qmfleet -s with a certificate from another CA: rejected at the handshake, exit 2", async () => {
    const foreign = await writeInventory(
      join(dir, "foreign.yaml"),
      certs,
      [{ name: "mx1", address: agents[0]?.address ?? "" }],
      certs.otherClient,
    );
    const { code, stdout } = await runCli(["--inventory", foreign, "-s", "--json"]);
    assert.equal(code, 2);
    const doc = JSON.parse(stdout) as { hosts: JsonHost[] };
    assert.equal(doc.hosts[0]?.state, "unreachable");
  });

  it("qmfleet -s with a read-only certificate: statistics are a read, exit 0", async () => {
    const reader = await writeInventory(
      join(dir, "reader.yaml"),
      certs,
      [{ name: "mx3", address: agents[2]?.address ?? "" }],
      certs.reader,
    );
    const { code, stdout, stderr } = await runCli(["--inventory", reader, "-s", "--format", "ndjson"]);
    assert.equal(code, 0, stderr);
    const lines = stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; state?: string });
    assert.deepEqual(
      lines.map((l) => [l.kind, l.state]),
      [
        ["host", "ok"],
        ["total", undefined],
      ],
    );
  });
});
