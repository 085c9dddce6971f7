// The changing RPCs (PreviewPurge, ExecutePurge) served by a real agent server in process, over
// gRPC with mutual TLS on loopback (the admin role needs a certificate), against queues the
// queue builder wrote. Fleet purges through qmfleet, with qmail-send running, are in
// test/src/e2e/fleet-purge.test.ts; these are the server's own promises: what it refuses, and
// that a purge once started runs to its end whoever goes away.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  AgentServiceClient,
  type ExecutePurgeRequest,
  type ExecutePurgeResponse,
  type PlanSummary,
  type PreviewPurgeRequest,
  type PreviewPurgeResponse,
  PurgeMode,
} from "@qmfleet/proto";
import { type BuiltMessage, generateFleetCertificates, QueueBuilder } from "@qmfleet/test";
import { AuditLog } from "../engine/audit.js";
import { DEFAULT_QMAIL_SEND_CONFIG } from "../engine/qmail-send.js";
import { type AgentServer, startAgentServer } from "./server.js";

const STORM = { criteria: [{ negate: false, senderExact: "" }] };
const deadline = () => ({ deadline: new Date(Date.now() + 60_000) });

let dir: string;
let creds: ChannelCredentials;
let tlsFiles: { ca: string; cert: string; key: string };

function preview(
  client: AgentServiceClient,
  request: Partial<PreviewPurgeRequest>,
): Promise<PreviewPurgeResponse[]> {
  const call = client.previewPurge(
    {
      filter: STORM,
      mode: 0,
      noQuarantine: false,
      includeMessages: false,
      sampleSize: 0,
      reason: "test",
      ...request,
    },
    new Metadata(),
    deadline(),
  );
  const responses: PreviewPurgeResponse[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (r: PreviewPurgeResponse) => responses.push(r));
    call.on("error", reject);
    call.on("end", () => resolve(responses));
  });
}

function planOf(responses: PreviewPurgeResponse[]): PlanSummary {
  const plan = responses.at(-1)?.summary;
  assert.ok(plan, "the preview ends with its plan");
  return plan;
}

/** ExecutePurge; `onFirstOutcome` runs once the first message's outcome has arrived. */
function execute(
  client: AgentServiceClient,
  request: Partial<ExecutePurgeRequest>,
  onFirstOutcome?: (cancel: () => void) => void,
): Promise<{ responses: ExecutePurgeResponse[]; error?: ServiceError }> {
  const call = client.executePurge(
    { planId: "", reason: "", noFlush: false, retireTimeoutSeconds: 0, ...request },
    new Metadata(),
    deadline(),
  );
  const responses: ExecutePurgeResponse[] = [];
  return new Promise((resolve) => {
    call.on("data", (r: ExecutePurgeResponse) => {
      responses.push(r);
      if (r.outcome && responses.filter((x) => x.outcome).length === 1) onFirstOutcome?.(() => call.cancel());
    });
    call.on("error", (error: ServiceError) => resolve({ responses, error }));
    call.on("end", () => resolve({ responses }));
  });
}

interface Fixture {
  root: string;
  state: string;
  storm: BuiltMessage[];
  server: AgentServer;
  client: AgentServiceClient;
  audit: AuditLog;
}

async function fixture(name: string, stormCount: number, withPurge = true): Promise<Fixture> {
  const root = path.join(dir, name, "queue");
  const state = path.join(dir, name, "state");
  const q = QueueBuilder.create(root);
  const storm: BuiltMessage[] = [];
  for (let i = 0; i < stormCount; i++) {
    storm.push(
      q.add({
        message: `Subject: failure notice\n\nbounce ${i}\n`,
        sender: "",
        recipients: [{ address: "support@abcde.net", channel: "remote" }],
      }),
    );
  }
  q.add({ message: "Subject: hi\n\nbody\n", sender: "a@b.example" });
  q.close();
  const audit = new AuditLog(path.join(state, "audit.log"));
  const server = await startAgentServer({
    queueRoot: root,
    listen: "localhost:0",
    tls: tlsFiles,
    hostname: name,
    ...(withPurge ? { purge: { stateDir: state, qmailSend: DEFAULT_QMAIL_SEND_CONFIG, audit } } : {}),
  });
  const client = new AgentServiceClient(`localhost:${server.port}`, creds);
  return { root, state, storm, server, client, audit };
}

function reportsIn(f: Fixture, planId: string): Array<Record<string, number | string>> {
  return fs
    .readFileSync(path.join(f.state, "audit.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .filter((a) => a.event === "purge-report" && a.planId === planId);
}

/** Every recipient record of the message marked done: what a live purge leaves until qmail-send retires it. */
const neutralized = (f: Fixture, m: BuiltMessage) =>
  fs.readFileSync(path.join(f.root, m.paths.remote), "latin1") === "Dsupport@abcde.net\0";

const fixtures: Fixture[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-purge-rpcs-"));
  const certs = await generateFleetCertificates(path.join(dir, "pki"));
  tlsFiles = { ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key };
  creds = credentials.createSsl(
    fs.readFileSync(certs.ca.cert),
    fs.readFileSync(certs.operator.key),
    fs.readFileSync(certs.operator.cert),
  );
});

after(async () => {
  for (const f of fixtures) {
    f.client.close();
    await f.server.shutdown(1000);
    f.audit.close();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("PreviewPurge and ExecutePurge", () => {
  it("previews: one PlannedMessage per match when asked, then the plan; the queue unchanged", async () => {
    const f = await fixture("preview", 3);
    fixtures.push(f);
    const responses = await preview(f.client, { includeMessages: true, sampleSize: 2 });
    assert.deepEqual(
      responses
        .slice(0, -1)
        .map((r) => r.message?.message?.ref?.id)
        .sort(),
      f.storm.map((m) => m.id).sort(),
    );
    const plan = planOf(responses);
    assert.deepEqual(
      [plan.matched, plan.sample.length, plan.mode, plan.quarantine],
      [3, 2, PurgeMode.PURGE_MODE_STOPPED, true],
    );
    assert.ok(f.storm.every((m) => fs.existsSync(path.join(f.root, m.paths.mess))));
  });

  it("refuses what it cannot run, naming it; the twin runs", async () => {
    const f = await fixture("refusals", 1);
    fixtures.push(f);
    await assert.rejects(preview(f.client, { filter: { criteria: [] } }), (e: ServiceError) => {
      assert.equal(e.code, status.INVALID_ARGUMENT);
      assert.match(e.details, /^PreviewPurge needs a filter: an empty one selects nothing/);
      return true;
    });
    const empty = await execute(f.client, {});
    assert.equal(empty.error?.code, status.INVALID_ARGUMENT);
    assert.match(empty.error?.details ?? "", /^ExecutePurge needs plan_id, the id PreviewPurge returned/);
    const unknown = await execute(f.client, { planId: "0123456789abcdef01234567" });
    assert.equal(unknown.error?.code, status.FAILED_PRECONDITION);
    assert.match(
      unknown.error?.details ?? "",
      /plan 0123456789abcdef01234567 is unknown, expired or already executed/,
    );
    const plan = planOf(await preview(f.client, {}));
    const run = await execute(f.client, { planId: plan.planId, reason: "twin" });
    assert.equal(run.error, undefined);
    assert.equal(run.responses.at(-1)?.report?.purged, 1);
    const again = await execute(f.client, { planId: plan.planId, reason: "twin" });
    assert.equal(again.error?.code, status.FAILED_PRECONDITION, "a plan runs once");
  });

  it("refuses to change a queue when started without a state directory", async () => {
    const f = await fixture("read-only", 1, false);
    fixtures.push(f);
    await assert.rejects(preview(f.client, {}), (e: ServiceError) => {
      assert.equal(e.code, status.FAILED_PRECONDITION);
      assert.match(e.details, /^PreviewPurge: this agent was started without a state directory/);
      return true;
    });
  });

  it("a purge goes on to its end when the caller goes away after the first outcome", async () => {
    const f = await fixture("cancelled", 400);
    fixtures.push(f);
    const plan = planOf(await preview(f.client, { mode: PurgeMode.PURGE_MODE_LIVE }));
    const run = await execute(
      f.client,
      { planId: plan.planId, reason: "walk away", retireTimeoutSeconds: 1 },
      (cancel) => cancel(),
    );
    assert.equal(run.error?.code, status.CANCELLED);
    assert.ok(run.responses.filter((r) => r.outcome).length < 400, "the caller left early");
    // No qmail-send here: every message neutralized, none retired; the report written all the same.
    const deadlineAt = Date.now() + 30_000;
    while (reportsIn(f, plan.planId).length === 0 && Date.now() < deadlineAt) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const [report] = reportsIn(f, plan.planId);
    assert.deepEqual(
      [report?.purged, report?.failed, report?.who, report?.reason],
      [400, 0, "operator", "walk away"],
    );
    assert.ok(f.storm.every((m) => neutralized(f, m)));
  });

  it("stopping the server waits for a purge in progress to end", async () => {
    const f = await fixture("shutdown", 20);
    fixtures.push(f);
    const plan = planOf(await preview(f.client, { mode: PurgeMode.PURGE_MODE_LIVE }));
    let stopped: Promise<void> | undefined;
    // Retirement is waited for 2 s (no qmail-send here to retire anything): the purge is in that
    // wait when the shutdown, with a 10 ms grace for calls, begins.
    const run = execute(
      f.client,
      { planId: plan.planId, reason: "shutdown", retireTimeoutSeconds: 2 },
      () => {
        stopped = f.server.shutdown(10);
      },
    );
    await run;
    await stopped;
    assert.equal(
      reportsIn(f, plan.planId).length,
      1,
      "the purge's report was written before the server stopped",
    );
    assert.ok(f.storm.every((m) => neutralized(f, m)));
  });
});
