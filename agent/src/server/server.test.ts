// startAgentServer in process: what it refuses, and plaintext on loopback (the development mode).
// Mutual TLS with real certificates is tested end to end in test/src/e2e.

import assert from "node:assert/strict";
import { linkSync, mkdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { AgentServiceClient, type GetStatsResponse } from "@qmfleet/proto";
import { type AgentServer, startAgentServer } from "./server.js";

// A split-1 queue holding one preprocessed message, named by its inode as qmail-queue does.
function tinyQueue(root: string): { id: string; size: number } {
  for (const dir of ["mess/0", "info/0", "local/0", "remote/0", "todo", "intd", "bounce", "pid", "lock"]) {
    mkdirSync(join(root, dir), { recursive: true });
  }
  const scratch = join(root, "pid", "scratch");
  writeFileSync(
    scratch,
    "Received: (qmail 1 invoked by uid 0); 1 Jan 2026 00:00:00 -0000\nSubject: hi\n\nbody\n",
  );
  const { ino, size } = statSync(scratch);
  const id = String(ino);
  linkSync(scratch, join(root, "mess", "0", id));
  unlinkSync(scratch);
  writeFileSync(join(root, "info", "0", id), "Fsender@example.com\0");
  writeFileSync(join(root, "remote", "0", id), "Trcpt@example.net\0");
  return { id, size };
}

describe("startAgentServer", () => {
  let dir: string;
  let queue: string;
  let message: { id: string; size: number };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-server-"));
    queue = join(dir, "queue");
    message = tinyQueue(queue);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses to serve without TLS unless told --insecure-loopback", async () => {
    await assert.rejects(
      startAgentServer({ queueRoot: queue, listen: "127.0.0.1:0" }),
      /^Error: refusing to serve without TLS/,
    );
  });

  it("refuses plaintext on an address that is not loopback", async () => {
    await assert.rejects(
      startAgentServer({ queueRoot: queue, listen: "0.0.0.0:0", insecureLoopback: true }),
      /--insecure-loopback needs a loopback listen address \(127\.0\.0\.1, ::1 or localhost\), not 0\.0\.0\.0/,
    );
    await assert.rejects(
      startAgentServer({ queueRoot: queue, listen: "[::]:0", insecureLoopback: true }),
      /needs a loopback listen address .*not ::$/,
    );
  });

  it("refuses plaintext and TLS at once", async () => {
    await assert.rejects(
      startAgentServer({
        queueRoot: queue,
        listen: "127.0.0.1:0",
        insecureLoopback: true,
        tls: { ca: "a", cert: "b", key: "c" },
      }),
      /--insecure-loopback and --tls-\* contradict each other/,
    );
  });

  describe("in plaintext on loopback", () => {
    let server: AgentServer;
    let client: AgentServiceClient;
    before(async () => {
      server = await startAgentServer({
        queueRoot: queue,
        listen: "127.0.0.1:0",
        insecureLoopback: true,
        hostname: "dev",
      });
      client = new AgentServiceClient(server.address, credentials.createInsecure());
    });
    after(async () => {
      client.close();
      await server.shutdown(1000);
    });

    it("binds a free port and serves the queue's statistics", async () => {
      assert.match(server.address, /^127\.0\.0\.1:\d+$/);
      assert.notEqual(server.port, 0);
      const response = await new Promise<GetStatsResponse>((resolve, reject) =>
        client.getStats({}, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
      assert.deepEqual(
        [
          response.stats?.messagesInQueue,
          response.stats?.preprocessed,
          response.stats?.withRemote,
          response.stats?.bytes,
        ],
        [1, 1, 1, message.size],
      );
      assert.ok(response.takenAtUnix > 0);
    });

    it("grants the read role only", async () => {
      const error = await new Promise<ServiceError | null>((resolve) =>
        client.sendNow({ reason: "" }, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (e) =>
          resolve(e),
        ),
      );
      assert.equal(error?.code, status.PERMISSION_DENIED);
      assert.match(
        String(error?.details),
        /^SendNow needs the admin role; plaintext client 127\.0\.0\.1:\d+ has read$/,
      );
    });
  });
});
