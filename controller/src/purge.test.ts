// The two steps of a fleet purge against real grpc-js servers on loopback that play agents as
// each test scripts them (the real agent, with qmail-send, is exercised in test/src/e2e). What
// these pin down: the controller executes exactly each host's own plan id, never a host whose
// preview failed or whose plan matched nothing, and a canary that does not purge cleanly stops
// the rest.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { credentials, Server, ServerCredentials, type ServerWritableStream, status } from "@grpc/grpc-js";
import {
  AgentServiceService,
  type ExecutePurgeRequest,
  type ExecutePurgeResponse,
  Outcome,
  type PlanSummary,
  type PreviewPurgeRequest,
  type PreviewPurgeResponse,
  PurgeMode,
  type PurgeReport,
} from "@qmfleet/proto";
import { type AgentClients, agentClients } from "./connection.js";
import type { InventoryHost } from "./inventory.js";
import { fleetExecutePurge, fleetPreviewPurge } from "./purge.js";

interface ScriptedAgent {
  /** matched by this host's preview; undefined: the preview is refused. */
  matched?: number;
  /** The report its execution ends with; undefined: it ends without one. */
  report?: Partial<PurgeReport>;
}

function plan(name: string, matched: number): PlanSummary {
  return {
    planId: `plan-of-${name}`,
    expiresUnix: 0,
    queueId: `${name}:1:2`,
    mode: PurgeMode.PURGE_MODE_LIVE,
    matched,
    bytes: matched * 100,
    sample: [],
    todo: 0,
    quarantine: true,
    beingWrittenSkipped: 0,
  };
}

function report(planId: string, extra: Partial<PurgeReport>): PurgeReport {
  return {
    planId,
    mode: PurgeMode.PURGE_MODE_LIVE,
    purged: 0,
    retired: 0,
    skippedChanged: 0,
    gone: 0,
    failed: 0,
    downtimeMs: 0,
    qmailSendRestarted: false,
    awaitingRetirement: 0,
    notProcessed: 0,
    error: "",
    notes: [],
    ...extra,
  };
}

/** One server playing every host (told apart by the port dialled); records each ExecutePurge. */
async function scriptedFleet(agents: Record<string, ScriptedAgent>) {
  const server = new Server();
  const byPort = new Map<number, string>();
  const executed: Array<{ host: string; planId: string }> = [];
  const nameOf = (call: { getHost(): string }) =>
    byPort.get(Number(call.getHost().split(":").pop())) as string;
  server.addService(AgentServiceService, {
    previewPurge: (call: ServerWritableStream<PreviewPurgeRequest, PreviewPurgeResponse>) => {
      const name = nameOf(call);
      const matched = agents[name]?.matched;
      if (matched === undefined) {
        call.emit("error", { code: status.PERMISSION_DENIED, details: "PreviewPurge needs the admin role" });
        return;
      }
      call.write({ summary: plan(name, matched) });
      call.end();
    },
    executePurge: (call: ServerWritableStream<ExecutePurgeRequest, ExecutePurgeResponse>) => {
      const name = nameOf(call);
      executed.push({ host: name, planId: call.request.planId });
      call.write({
        outcome: {
          ref: { id: "7", fingerprint: "f" },
          outcome: Outcome.OUTCOME_NEUTRALIZED,
          error: "",
          touched: [],
          quarantineId: "",
        },
      });
      const scripted = agents[name]?.report;
      if (scripted) call.write({ report: report(call.request.planId, scripted) });
      call.end();
    },
  });
  const hosts: InventoryHost[] = [];
  for (const name of Object.keys(agents)) {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    byPort.set(port, name);
    hosts.push({ name, address: `127.0.0.1:${port}`, tags: [] });
  }
  return { hosts, executed, stop: () => server.forceShutdown() };
}

const FILTER = {
  filter: { criteria: [{ negate: false, all: true }] },
  mode: 0,
  noQuarantine: false,
  includeMessages: false,
  sampleSize: 0,
  reason: "r",
};
const SETTINGS = { reason: "r", noFlush: false, retireTimeoutSeconds: 0 };

describe("fleet purge", () => {
  let clients: AgentClients;
  before(() => {
    clients = agentClients(credentials.createInsecure());
  });
  after(() => clients.close());

  it("executes each host's own plan, and neither a host whose preview failed nor one with nothing to purge", async () => {
    const fleet = await scriptedFleet({
      a: { matched: 3, report: { purged: 3, retired: 3 } },
      empty: { matched: 0, report: { purged: 0 } },
      denied: {},
      b: { matched: 1, report: { purged: 1, retired: 0, awaitingRetirement: 1 } },
    });
    try {
      const preview = await fleetPreviewPurge(fleet.hosts, clients, () => FILTER, { timeoutMs: 5000 });
      assert.deepEqual(preview.totals, { matched: 4, bytes: 400, todo: 0 });
      assert.equal(preview.notOk, 1);
      const result = await fleetExecutePurge(preview.hosts, clients, SETTINGS, { timeoutMs: 5000 });
      assert.deepEqual(fleet.executed.map((e) => `${e.host}:${e.planId}`).sort(), [
        "a:plan-of-a",
        "b:plan-of-b",
      ]);
      assert.deepEqual(
        result.hosts.map((r) => [r.host.name, r.state, r.nothingToDo ?? false, r.report?.purged]),
        [
          ["a", "ok", false, 3],
          ["empty", "ok", true, undefined],
          ["denied", "denied", false, undefined],
          ["b", "ok", false, 1],
        ],
      );
      assert.match(
        result.hosts[2]?.error ?? "",
        /^not executed: the preview ended denied: PERMISSION_DENIED/,
      );
      assert.deepEqual(
        [result.totals.purged, result.totals.retired, result.totals.awaitingRetirement],
        [4, 3, 1],
      );
      assert.equal(result.notOk, 1);
    } finally {
      fleet.stop();
    }
  });

  it("a canary that leaves messages failed, or ends without a report, stops the rest; a clean one does not", async () => {
    const fleet = await scriptedFleet({
      first: { matched: 2, report: { purged: 1, failed: 1 } },
      second: { matched: 2, report: { purged: 2 } },
      third: { matched: 2 },
    });
    try {
      const preview = await fleetPreviewPurge(fleet.hosts, clients, () => FILTER, { timeoutMs: 5000 });
      const stopped = await fleetExecutePurge(preview.hosts, clients, SETTINGS, {
        timeoutMs: 5000,
        canary: 1,
      });
      assert.deepEqual(
        fleet.executed.map((e) => e.host),
        ["first"],
      );
      assert.deepEqual(
        stopped.hosts.map((r) => [r.host.name, r.state]),
        [
          ["first", "failed"],
          ["second", "skipped"],
          ["third", "skipped"],
        ],
      );
      assert.equal(stopped.hosts[0]?.error, "1 message(s) failed (see the outcomes)");
      assert.equal(stopped.hosts[1]?.error, "not executed: canary first (failed) did not purge cleanly");

      // The twin: the clean host as the canary; then the rest run, and one without a report fails.
      fleet.executed.length = 0;
      const [, second, third] = preview.hosts;
      const clean = await fleetExecutePurge(
        [second, third].filter((h) => h !== undefined),
        clients,
        SETTINGS,
        {
          timeoutMs: 5000,
          canary: 1,
        },
      );
      assert.deepEqual(
        fleet.executed.map((e) => e.host),
        ["second", "third"],
      );
      assert.deepEqual(
        clean.hosts.map((r) => [r.host.name, r.state, r.error]),
        [
          ["second", "ok", undefined],
          ["third", "failed", "the agent ended ExecutePurge without a report"],
        ],
      );
    } finally {
      fleet.stop();
    }
  });
});
