// fanOut against real grpc-js servers on loopback that answer GetStats as each test scripts them
// (the real agent is exercised over mutual TLS in test/src/e2e). Plaintext here: TLS is not what
// these tests are about.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  credentials,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import {
  AgentServiceService,
  type GetStatsRequest,
  type GetStatsResponse,
  type QueueStats,
} from "@qmfleet/proto";
import { type AgentClients, agentClients } from "./connection.js";
import { fanOut, type HostCall, type HostOutcome, unaryCall } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";

type StatsHandler = (
  call: ServerUnaryCall<GetStatsRequest, GetStatsResponse>,
  callback: sendUnaryData<GetStatsResponse>,
) => void;

function statsOf(messages: number): QueueStats {
  return {
    messagesInQueue: messages,
    notPreprocessed: 0,
    preprocessed: messages,
    withLocal: 0,
    withRemote: messages,
    bouncing: 0,
    beingWritten: 0,
    bytes: messages * 100,
    oldestBirthUnix: 0,
    oldestAgeSeconds: 0,
  };
}

/** A server on loopback whose GetStats does whatever `handler` says; one port per host name. */
async function scriptedServer(
  handlers: Record<string, StatsHandler>,
): Promise<{ hosts: InventoryHost[]; stop(): void }> {
  const server = new Server();
  const byPort = new Map<number, StatsHandler>();
  const getStats: handleUnaryCall<GetStatsRequest, GetStatsResponse> = (call, callback) => {
    // The :authority header names the port the client dialled, so one server plays every host.
    const port = Number(call.getHost().split(":").pop());
    (byPort.get(port) as StatsHandler)(call, callback);
  };
  server.addService(AgentServiceService, { getStats });
  const hosts: InventoryHost[] = [];
  for (const [name, handler] of Object.entries(handlers)) {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    byPort.set(port, handler);
    hosts.push({ name, address: `127.0.0.1:${port}`, tags: [] });
  }
  return { hosts, stop: () => server.forceShutdown() };
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const answer =
  (messages: number): StatsHandler =>
  (_call, callback) =>
    callback(null, { stats: statsOf(messages), takenAtUnix: 0 });

const refuse =
  (code: status, details: string): StatsHandler =>
  (_call, callback) =>
    callback({ code, details, name: "Error", message: details, metadata: undefined as never });

async function collect<T>(outcomes: AsyncIterable<HostOutcome<T>>): Promise<Map<string, HostOutcome<T>>> {
  const byName = new Map<string, HostOutcome<T>>();
  for await (const outcome of outcomes) {
    byName.set(outcome.host.name, outcome);
  }
  return byName;
}

const getStats: HostCall<GetStatsResponse> = (client, ctx) =>
  unaryCall(client.getStats.bind(client), {}, ctx);

describe("fanOut", () => {
  let clients: AgentClients;
  before(() => {
    clients = agentClients(credentials.createInsecure());
  });
  after(() => clients.close());

  it("ends every host in its named state while the others answer", async () => {
    const never: StatsHandler = () => {};
    const fleet = await scriptedServer({
      ok: answer(7),
      denied: refuse(status.PERMISSION_DENIED, "GetStats needs the read role"),
      unauthenticated: refuse(status.UNAUTHENTICATED, "no client certificate"),
      failed: refuse(status.FAILED_PRECONDITION, "cannot read /var/qmail/queue/mess: EACCES"),
      slow: never,
    });
    const hosts = [...fleet.hosts, { name: "down", address: `127.0.0.1:${await closedPort()}`, tags: [] }];
    try {
      const result = await collect(fanOut(hosts, clients, getStats, { timeoutMs: 1500 }));
      const seen = Object.fromEntries([...result].map(([name, o]) => [name, [o.state, o.error]]));
      assert.deepEqual(seen.ok, ["ok", undefined]);
      assert.equal(result.get("ok")?.value?.stats?.messagesInQueue, 7);
      assert.deepEqual(seen.denied, ["denied", "PERMISSION_DENIED: GetStats needs the read role"]);
      assert.deepEqual(seen.unauthenticated, ["denied", "UNAUTHENTICATED: no client certificate"]);
      assert.deepEqual(seen.failed, [
        "failed",
        "FAILED_PRECONDITION: cannot read /var/qmail/queue/mess: EACCES",
      ]);
      assert.equal(seen.slow?.[0], "timed_out");
      assert.match(String(seen.slow?.[1]), /^DEADLINE_EXCEEDED: /);
      assert.equal(seen.down?.[0], "unreachable");
      assert.match(String(seen.down?.[1]), /^UNAVAILABLE: .*ECONNREFUSED/);
      assert.equal(result.size, hosts.length);
    } finally {
      fleet.stop();
    }
  });

  it("yields each host as soon as it answers, not in host order", async () => {
    let releaseSlow: () => void = () => {};
    const slowHeld = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    const fleet = await scriptedServer({
      slow: (call, callback) => {
        slowHeld.then(() => answer(1)(call, callback));
      },
      fast: answer(2),
    });
    try {
      const order: string[] = [];
      for await (const outcome of fanOut(fleet.hosts, clients, getStats, { timeoutMs: 30_000 })) {
        order.push(`${outcome.host.name}:${outcome.state}`);
        // The slow host answers only once the fast one has been seen.
        releaseSlow();
      }
      assert.deepEqual(order, ["fast:ok", "slow:ok"]);
    } finally {
      fleet.stop();
    }
  });

  it("keeps at most `concurrency` hosts in flight", async () => {
    const fleet = await scriptedServer(
      Object.fromEntries(["a", "b", "c", "d", "e"].map((n) => [n, answer(1)])),
    );
    let active = 0;
    let most = 0;
    try {
      const result = await collect(
        fanOut(
          fleet.hosts,
          clients,
          async (client, ctx) => {
            active++;
            most = Math.max(most, active);
            try {
              return await getStats(client, ctx);
            } finally {
              active--;
            }
          },
          { timeoutMs: 30_000, concurrency: 2 },
        ),
      );
      assert.equal(most, 2);
      assert.deepEqual(
        [...result.values()].map((o) => o.state),
        ["ok", "ok", "ok", "ok", "ok"],
      );
    } finally {
      fleet.stop();
    }
  });

  it("cancels the call in flight and the hosts not started when the signal aborts", async () => {
    const abort = new AbortController();
    let cancelled!: () => void;
    const serverSawCancel = new Promise<void>((resolve) => {
      cancelled = resolve;
    });
    const hold: StatsHandler = (call) => {
      call.on("cancelled", cancelled);
      abort.abort();
    };
    const fleet = await scriptedServer({ first: hold, second: answer(1), third: answer(1) });
    try {
      const result = await collect(
        fanOut(fleet.hosts, clients, getStats, { timeoutMs: 30_000, concurrency: 1, signal: abort.signal }),
      );
      assert.deepEqual(
        [...result].map(([name, o]) => [name, o.state]),
        [
          ["first", "cancelled"],
          ["second", "cancelled"],
          ["third", "cancelled"],
        ],
      );
      assert.match(String(result.get("first")?.error), /^CANCELLED: /);
      assert.equal(result.get("second")?.error, "cancelled before the call started");
      // The twin: without the abort, the same fleet answers.
      const again = await collect(fanOut(fleet.hosts.slice(1), clients, getStats, { timeoutMs: 30_000 }));
      assert.deepEqual(
        [...again.values()].map((o) => o.state),
        ["ok", "ok"],
      );
      // Resolves only if the agent saw the call cancelled (otherwise the test times out).
      await serverSawCancel;
    } finally {
      fleet.stop();
    }
  });

  it("cancels what is still running when the consumer stops early", async () => {
    let cancelled!: () => void;
    const serverSawCancel = new Promise<void>((resolve) => {
      cancelled = resolve;
    });
    const fleet = await scriptedServer({
      fast: answer(1),
      held: (call) => call.on("cancelled", cancelled),
    });
    try {
      for await (const outcome of fanOut(fleet.hosts, clients, getStats, { timeoutMs: 30_000 })) {
        assert.equal(outcome.host.name, "fast");
        break;
      }
      // Resolves only if the held call was cancelled (otherwise the test times out).
      await serverSawCancel;
    } finally {
      fleet.stop();
    }
  });

  it("reports an exception thrown by the call itself as failed", async () => {
    const hosts = [{ name: "x", address: "127.0.0.1:1", tags: [] }];
    const result = await collect(
      fanOut(
        hosts,
        clients,
        async () => {
          throw new Error("the agent answered GetStats without stats");
        },
        { timeoutMs: 1000 },
      ),
    );
    assert.deepEqual(
      [result.get("x")?.state, result.get("x")?.error],
      ["failed", "the agent answered GetStats without stats"],
    );
  });
});
