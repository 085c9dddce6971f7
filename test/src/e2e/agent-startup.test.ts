// The real qmfleet-agent process: what it refuses to start with, what it starts with, and how it
// stops.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { AgentServiceClient, type GetAgentInfoResponse } from "@qmfleet/proto";
import { type FleetCertificates, generateFleetCertificates } from "../certs.js";
import { buildQueue } from "../queue-builder.js";
import { type AgentProcess, type AgentProcessOptions, startAgentProcess } from "./processes.js";

function getAgentInfo(address: string, creds: ChannelCredentials): Promise<GetAgentInfoResponse> {
  const client = new AgentServiceClient(address, creds);
  return new Promise<GetAgentInfoResponse>((resolve, reject) =>
    client.getAgentInfo({}, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  ).finally(() => client.close());
}

function sendNow(address: string, creds: ChannelCredentials): Promise<ServiceError | null> {
  const client = new AgentServiceClient(address, creds);
  return new Promise<ServiceError | null>((resolve) =>
    client.sendNow({ reason: "" }, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (e) =>
      resolve(e),
    ),
  ).finally(() => client.close());
}

describe("qmfleet-agent serve", () => {
  let dir: string;
  let certs: FleetCertificates;
  let queue: string;
  const started: AgentProcess[] = [];
  const start = async (options: Omit<AgentProcessOptions, "queue">) => {
    const agent = await startAgentProcess({ queue, ...options });
    started.push(agent);
    return agent;
  };
  const operator = () =>
    credentials.createSsl(
      readFileSync(certs.ca.cert),
      readFileSync(certs.operator.key),
      readFileSync(certs.operator.cert),
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-startup-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    queue = join(dir, "queue");
    buildQueue(queue, { split: 5, bigTodo: true });
  });
  after(async () => {
    await Promise.all(started.map((a) => a.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses to start without TLS, saying how to give it", async () => {
    await assert.rejects(
      start({}),
      /exited \(1\)[\s\S]*refusing to serve without TLS: give --tls-ca, --tls-cert and --tls-key/,
    );
  });

  it("names the missing TLS flag", async () => {
    await assert.rejects(
      start({ extraArgs: ["--tls-ca", certs.ca.cert, "--tls-cert", certs.server.cert] }),
      /exited \(1\)[\s\S]*mutual TLS needs --tls-ca, --tls-cert and --tls-key: missing --tls-key/,
    );
  });

  it("names an unreadable or mismatched TLS file", async () => {
    const missing = join(dir, "nope.key");
    await assert.rejects(
      start({ certs: { ...certs, server: { ...certs.server, key: missing } } }),
      new RegExp(`exited \\(1\\)[\\s\\S]*cannot read --tls-key ${missing}: ENOENT`),
    );
    await assert.rejects(
      start({ certs: { ...certs, server: { ...certs.server, key: certs.reader.key } } }),
      /exited \(1\)[\s\S]*--tls-key .*reader\.key is not the key of --tls-cert .*agent\.crt/,
    );
  });

  it("allows plaintext only on loopback, asked for by name, with the read role", async () => {
    await assert.rejects(
      start({ listen: "0.0.0.0:0", extraArgs: ["--insecure-loopback"] }),
      /exited \(1\)[\s\S]*--insecure-loopback needs a loopback listen address \(127\.0\.0\.1, ::1 or localhost\), not 0\.0\.0\.0/,
    );
    // The twin: the same flag on 127.0.0.1 starts, and serves reads in plaintext.
    const dev = await start({ listen: "127.0.0.1:0", extraArgs: ["--insecure-loopback"] });
    assert.match(dev.log(), /PLAINTEXT, loopback only, read role only/);
    const info = await getAgentInfo(dev.address, credentials.createInsecure());
    assert.equal(info.callerRole, "read");
    const denied = await sendNow(dev.address, credentials.createInsecure());
    assert.equal(denied?.code, status.PERMISSION_DENIED);
    assert.match(
      String(denied?.details),
      /^SendNow needs the admin role; plaintext client 127\.0\.0\.1:\d+ has read$/,
    );
  });

  it("serves with TLS and reports the queue's shape; stops on SIGTERM with status 0", async () => {
    const agent = await start({ certs, extraArgs: ["--hostname", "mx-test.example.jp"] });
    const info = await getAgentInfo(agent.address, operator());
    assert.equal(info.hostname, "mx-test.example.jp");
    assert.equal(info.queueRoot, queue);
    assert.equal(info.split, 5);
    assert.equal(info.bigTodo, true);
    assert.match(info.queueId, /^mx-test\.example\.jp:\d+:\d+$/);
    assert.deepEqual(info.qmailSend, { running: false, pid: 0 });
    assert.equal(await agent.stop(), 0);
    assert.match(agent.log(), /SIGTERM: stopping, letting calls in flight finish[\s\S]*stopped\n$/);
  });
});
