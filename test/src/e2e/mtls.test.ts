// Who gets in: a real qmfleet-agent process serving over mutual TLS on loopback, called by
// clients holding the right certificate, a certificate without a role, a read-only one, one from
// another CA, none at all, or no TLS. Every rejection has a passing twin: the same setup with the
// right credentials succeeding, so a rejection cannot pass because nothing works.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { AgentServiceClient, ListQuarantineRequest, PreviewPurgeRequest } from "@qmfleet/proto";
import { type FleetCertificates, generateFleetCertificates, type KeyPairFiles } from "../certs.js";
import { buildQueue } from "../queue-builder.js";
import { type AgentProcess, startAgentProcess } from "./processes.js";

type Outcome = { ok: true; value: Record<string, unknown> } | { ok: false; code: string; details: string };

type UnaryName = "getAgentInfo" | "getStats" | "sendNow";

function tlsCredentials(
  certs: FleetCertificates,
  client?: KeyPairFiles,
  trust: KeyPairFiles = certs.ca,
): ChannelCredentials {
  const ca = readFileSync(trust.cert);
  return client
    ? credentials.createSsl(ca, readFileSync(client.key), readFileSync(client.cert))
    : credentials.createSsl(ca);
}

function settle(error: ServiceError | null, value: unknown): Outcome {
  return error
    ? { ok: false, code: status[error.code] ?? String(error.code), details: error.details }
    : { ok: true, value: value as Record<string, unknown> };
}

/** One unary call on a fresh connection; a deadline unless `noDeadline`. */
function call(
  address: string,
  creds: ChannelCredentials,
  method: UnaryName,
  noDeadline = false,
): Promise<Outcome> {
  const client = new AgentServiceClient(address, creds);
  const options = noDeadline ? {} : { deadline: new Date(Date.now() + 10_000) };
  return new Promise<Outcome>((resolve) => {
    const done = (error: ServiceError | null, value: unknown) => resolve(settle(error, value));
    if (method === "getAgentInfo") client.getAgentInfo({}, new Metadata(), options, done);
    else if (method === "getStats") client.getStats({}, new Metadata(), options, done);
    else client.sendNow({ reason: "" }, new Metadata(), options, done);
  }).finally(() => client.close());
}

/** A server stream to its end: ok with the responses, or the error it ended with. */
function streamCall(
  address: string,
  creds: ChannelCredentials,
  method: "listQuarantine" | "previewPurge",
): Promise<Outcome> {
  const client = new AgentServiceClient(address, creds);
  const options = { deadline: new Date(Date.now() + 10_000) };
  const stream =
    method === "listQuarantine"
      ? client.listQuarantine(ListQuarantineRequest.fromPartial({}), new Metadata(), options)
      : client.previewPurge(
          PreviewPurgeRequest.fromPartial({ filter: { criteria: [{ all: true }] }, reason: "mtls test" }),
          new Metadata(),
          options,
        );
  const responses: unknown[] = [];
  return new Promise<Outcome>((resolve) => {
    stream.on("data", (response: unknown) => responses.push(response));
    stream.on("error", (error: ServiceError) => resolve(settle(error, undefined)));
    stream.on("end", () => resolve({ ok: true, value: { responses } }));
  }).finally(() => client.close());
}

function assertRejected(outcome: Outcome, code: string, details?: RegExp): void {
  assert.equal(outcome.ok, false, `expected ${code}, got a success`);
  if (!outcome.ok) {
    assert.equal(outcome.code, code, outcome.details);
    if (details) assert.match(outcome.details, details);
  }
}

function assertOk(outcome: Outcome): Record<string, unknown> {
  assert.ok(outcome.ok, outcome.ok ? "" : `${outcome.code}: ${outcome.details}`);
  return outcome.value;
}

describe("agent access control over mutual TLS", () => {
  let dir: string;
  let certs: FleetCertificates;
  let queue: string;
  let agent: AgentProcess;
  const started: AgentProcess[] = [];

  const startAgent = async (options: Partial<Parameters<typeof startAgentProcess>[0]> = {}) => {
    const a = await startAgentProcess({ queue, certs, ...options });
    started.push(a);
    return a;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-mtls-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    queue = join(dir, "queue");
    buildQueue(queue, { messages: [{ message: "Subject: hi\n\nbody\n" }] });
    agent = await startAgent();
  });
  after(async () => {
    await Promise.all(started.map((a) => a.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it("serves a client with an admin certificate from the fleet CA (the twin of every rejection)", async () => {
    const info = assertOk(await call(agent.address, tlsCredentials(certs, certs.operator), "getAgentInfo"));
    assert.equal(info.callerRole, "admin");
    const stats = assertOk(await call(agent.address, tlsCredentials(certs, certs.operator), "getStats"));
    assert.equal((stats.stats as { messagesInQueue: number }).messagesInQueue, 1);
  });

  it("rejects a client without a certificate", async () => {
    assertRejected(await call(agent.address, tlsCredentials(certs), "getAgentInfo"), "UNAVAILABLE");
  });

  it("rejects a client certificate from another CA, even with the same subject", async () => {
    assertRejected(
      await call(agent.address, tlsCredentials(certs, certs.otherClient), "getAgentInfo"),
      "UNAVAILABLE",
    );
  });

  it("rejects plaintext", async () => {
    assertRejected(await call(agent.address, credentials.createInsecure(), "getAgentInfo"), "UNAVAILABLE");
  });

  it("is itself rejected by a client that does not trust its CA", async () => {
    const distrust = tlsCredentials(certs, certs.operator, certs.otherCa);
    assertRejected(await call(agent.address, distrust, "getAgentInfo"), "UNAVAILABLE");
  });

  it("gives a read certificate the read role: reads yes, changes no", async () => {
    const reader = tlsCredentials(certs, certs.reader);
    assert.equal(assertOk(await call(agent.address, reader, "getAgentInfo")).callerRole, "read");
    assertRejected(
      await call(agent.address, reader, "sendNow"),
      "PERMISSION_DENIED",
      /^SendNow needs the admin role; certificate CN=reader,OU=read,O=qmfleet has read$/,
    );
    // The twin: the admin certificate may (no qmail-send runs here: nothing to signal).
    const sent = assertOk(await call(agent.address, tlsCredentials(certs, certs.operator), "sendNow"));
    assert.deepEqual(sent, { signaled: false, pid: 0 });
  });

  it("refuses a purge preview to the read role, on a stream too, and lets it list the quarantine", async () => {
    assertRejected(
      await streamCall(agent.address, tlsCredentials(certs, certs.reader), "previewPurge"),
      "PERMISSION_DENIED",
      /^PreviewPurge needs the admin role; certificate CN=reader,OU=read,O=qmfleet has read$/,
    );
    // The twin: the admin certificate gets a plan (of the one message), and nothing changes.
    const admin = assertOk(
      await streamCall(agent.address, tlsCredentials(certs, certs.operator), "previewPurge"),
    );
    const [summary] = admin.responses as Array<{ summary?: { planId: string; matched: number } }>;
    assert.match(summary?.summary?.planId ?? "", /^[0-9a-f]{24}$/);
    assert.equal(summary?.summary?.matched, 1);
    assertOk(await streamCall(agent.address, tlsCredentials(certs, certs.reader), "listQuarantine"));
  });

  it("denies a fleet certificate that carries no role, unless the agent maps its CN", async () => {
    const noRole = tlsCredentials(certs, certs.noRole);
    assertRejected(
      await call(agent.address, noRole, "getStats"),
      "PERMISSION_DENIED",
      /^certificate CN=no-role,OU=billing,O=qmfleet carries no qmfleet role: issue it with OU=read or OU=admin, or start the agent with --role/,
    );
    const mapped = await startAgent({ extraArgs: ["--role", "no-role=read"] });
    assert.equal(assertOk(await call(mapped.address, noRole, "getAgentInfo")).callerRole, "read");
    assertRejected(
      await call(mapped.address, noRole, "sendNow"),
      "PERMISSION_DENIED",
      /needs the admin role/,
    );
  });

  it("refuses a call without a deadline", async () => {
    const operator = tlsCredentials(certs, certs.operator);
    assertRejected(
      await call(agent.address, operator, "getStats", true),
      "INVALID_ARGUMENT",
      /^GetStats was called without a deadline: every call must set one$/,
    );
    assertOk(await call(agent.address, operator, "getStats"));
  });

  it("names an unusable queue root in FAILED_PRECONDITION, and keeps serving", async () => {
    const missing = join(dir, "no-such-queue");
    const broken = await startAgent({ queue: missing });
    assert.match(broken.log(), new RegExp(`warning: cannot read queue root ${missing}: ENOENT`));
    assertRejected(
      await call(broken.address, tlsCredentials(certs, certs.operator), "getStats"),
      "FAILED_PRECONDITION",
      new RegExp(`^cannot read queue root ${missing}: ENOENT \\(check the queue root`),
    );
  });

  it("tells an agent without the rights to read the queue what to do", async () => {
    // A queue owned by another user, mode 0750, and an agent that is root but without the
    // capabilities that let root read anything (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): the
    // kernel says EACCES, as it does to an agent started as an ordinary user.
    const nobody = { uid: 65534, gid: 65534 };
    const guarded = join(dir, "guarded-queue");
    buildQueue(guarded, { owners: { queue: nobody, send: nobody, remote: nobody } });
    const weak = await startAgent({
      queue: guarded,
      wrapper: ["setpriv", "--bounding-set=-dac_override,-dac_read_search"],
    });
    assertRejected(
      await call(weak.address, tlsCredentials(certs, certs.operator), "getStats"),
      "FAILED_PRECONDITION",
      new RegExp(`^cannot read queue root ${guarded}: EACCES \\(run the agent as root or as qmails\\)$`),
    );
    // The twin: the same queue, an agent with root's full rights.
    const strong = await startAgent({ queue: guarded });
    assertOk(await call(strong.address, tlsCredentials(certs, certs.operator), "getStats"));
  });
});
