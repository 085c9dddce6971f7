// GetAgentInfo's qmail-send state, from the real agent process, against the qmail-send stand-in
// holding lock/sendmutex the way qmail-send does.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { credentials, Metadata } from "@grpc/grpc-js";
import { AgentServiceClient, type QmailSendStatus } from "@qmfleet/proto";
import { type FleetCertificates, generateFleetCertificates } from "../certs.js";
import { startQmailSend } from "../qmail-send/control.js";
import { buildQueue } from "../queue-builder.js";
import { type AgentProcess, startAgentProcess } from "./processes.js";

describe("GetAgentInfo reports qmail-send", () => {
  let dir: string;
  let certs: FleetCertificates;
  let queue: string;
  let agent: AgentProcess;

  const qmailSend = async (): Promise<QmailSendStatus | undefined> => {
    const client = new AgentServiceClient(
      agent.address,
      credentials.createSsl(
        readFileSync(certs.ca.cert),
        readFileSync(certs.reader.key),
        readFileSync(certs.reader.cert),
      ),
    );
    try {
      return await new Promise((resolve, reject) =>
        client.getAgentInfo({}, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (e, r) =>
          e ? reject(e) : resolve(r.qmailSend),
        ),
      );
    } finally {
      client.close();
    }
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-e2e-send-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    queue = join(dir, "queue");
    buildQueue(queue, {});
    agent = await startAgentProcess({ queue, certs });
  });
  after(async () => {
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("running, with the pid holding lock/sendmutex; not running once it has exited", async () => {
    const standIn = await startQmailSend(queue);
    try {
      assert.deepEqual(await qmailSend(), { running: true, pid: standIn.pid });
    } finally {
      await standIn.dispose();
    }
    assert.deepEqual(await qmailSend(), { running: false, pid: 0 });
  });
});
