// fleetMessages / fleetStream against real grpc-js servers on loopback whose ListMessages streams
// what each test scripts (the real agent is exercised over mutual TLS in test/src/e2e).
// Plaintext here: TLS is not what these tests are about.

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  credentials,
  type handleServerStreamingCall,
  Server,
  ServerCredentials,
  type ServerWritableStream,
  status,
} from "@grpc/grpc-js";
import {
  AgentServiceService,
  type ListMessagesRequest,
  type ListMessagesResponse,
  MessageState,
  type MessageSummary,
  SortKey,
} from "@qmfleet/proto";
import { type AgentClients, agentClients } from "./connection.js";
import type { FleetStreamEvent } from "./fleet-stream.js";
import type { InventoryHost } from "./inventory.js";
import { fleetMessages } from "./messages.js";

type ListCall = ServerWritableStream<ListMessagesRequest, ListMessagesResponse>;
type ListHandler = (call: ListCall) => void;

function summary(id: string, birthTimeUnix: number): MessageSummary {
  return {
    ref: { id, fingerprint: `1:${id}` },
    state: MessageState.MESSAGE_STATE_PREPROCESSED,
    birthTimeUnix,
    size: 100,
    sender: "",
    recipients: [],
    clientIp: "",
    bouncing: false,
  };
}

/** A server on loopback whose ListMessages does what `handlers` say; one port per host name. */
async function scriptedServer(
  handlers: Record<string, ListHandler>,
): Promise<{ hosts: InventoryHost[]; stop(): void }> {
  const server = new Server();
  const byPort = new Map<number, ListHandler>();
  const listMessages: handleServerStreamingCall<ListMessagesRequest, ListMessagesResponse> = (call) => {
    // The :authority header names the port the client dialled, so one server plays every host.
    const port = Number(call.getHost().split(":").pop());
    (byPort.get(port) as ListHandler)(call);
  };
  server.addService(AgentServiceService, { listMessages });
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

const streamOf =
  (messages: MessageSummary[], failWith?: { code: status; details: string }): ListHandler =>
  (call) => {
    for (const message of messages) call.write({ message });
    if (failWith) call.emit("error", failWith);
    else call.end();
  };

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const ALL_REQUEST: ListMessagesRequest = {
  filter: { criteria: [{ negate: false, all: true }] },
  limit: 0,
  sort: SortKey.SORT_KEY_UNSPECIFIED,
  descending: false,
};

async function collect<T>(events: AsyncIterable<FleetStreamEvent<T>>): Promise<FleetStreamEvent<T>[]> {
  const all: FleetStreamEvent<T>[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const describeEvent = (e: FleetStreamEvent<MessageSummary>) =>
  e.kind === "item" ? `${e.host.name}:${e.item.ref?.id}` : `${e.outcome.host.name}=${e.outcome.state}`;

describe("fleetMessages", () => {
  let clients: AgentClients;
  before(() => {
    clients = agentClients(credentials.createInsecure());
  });
  after(() => clients.close());

  it("merges every host's messages; each host's state follows its last message", async () => {
    const fleet = await scriptedServer({
      mx1: streamOf([summary("1", 10), summary("2", 20), summary("3", 30)]),
      mx2: streamOf([summary("7", 5)]),
      broken: streamOf([summary("9", 1)], {
        code: status.FAILED_PRECONDITION,
        details: "cannot read /q/mess/3",
      }),
    });
    const hosts = [...fleet.hosts, { name: "down", address: `127.0.0.1:${await closedPort()}`, tags: [] }];
    try {
      const events = await collect(fleetMessages(hosts, clients, ALL_REQUEST, { timeoutMs: 10_000 }));
      const shown = events.map(describeEvent);
      for (const [host, ids] of [
        ["mx1", ["1", "2", "3"]],
        ["mx2", ["7"]],
        ["broken", ["9"]],
      ] as const) {
        const mine = shown.filter((s) => s.startsWith(`${host}:`) || s.startsWith(`${host}=`));
        assert.deepEqual(
          mine.slice(0, -1),
          ids.map((id) => `${host}:${id}`),
        );
      }
      const outcome = (name: string) =>
        events.flatMap((e) => (e.kind === "host" && e.outcome.host.name === name ? [e.outcome] : []));
      assert.deepEqual(
        outcome("mx1").map((o) => [o.state, o.value]),
        [["ok", 3]],
      );
      assert.deepEqual(
        outcome("broken").map((o) => [o.state, o.error]),
        [["failed", "FAILED_PRECONDITION: cannot read /q/mess/3"]],
      );
      assert.deepEqual(
        outcome("down").map((o) => o.state),
        ["unreachable"],
      );
      assert.equal(events.filter((e) => e.kind === "host").length, 4);
    } finally {
      fleet.stop();
    }
  });

  it("merges hosts' sorted streams into one sorted stream", async () => {
    // Each host sends its messages youngest first (SORT_KEY_AGE ascending: the largest birth time first).
    const fleet = await scriptedServer({
      a: streamOf([summary("1", 900), summary("2", 500), summary("3", 100)]),
      b: streamOf([summary("4", 800), summary("5", 700), summary("6", 50)]),
      c: streamOf([summary("7", 600)]),
    });
    try {
      const events = await collect(
        fleetMessages(
          fleet.hosts,
          clients,
          { ...ALL_REQUEST, sort: SortKey.SORT_KEY_AGE, limit: 10 },
          { timeoutMs: 10_000, bufferPerHost: 1 },
        ),
      );
      const births = events.flatMap((e) => (e.kind === "item" ? [e.item.birthTimeUnix] : []));
      assert.deepEqual(births, [900, 800, 700, 600, 500, 100, 50]);
      // Without the sort the same streams arrive as they come: not necessarily in that order,
      // but every message is there.
      const unsorted = await collect(fleetMessages(fleet.hosts, clients, ALL_REQUEST, { timeoutMs: 10_000 }));
      assert.deepEqual(
        unsorted.flatMap((e) => (e.kind === "item" ? [e.item.birthTimeUnix] : [])).sort((x, y) => y - x),
        births,
      );
    } finally {
      fleet.stop();
    }
  });

  it("reads a host only as fast as the consumer; stopping early cancels the agent's stream", async () => {
    const total = 200_000;
    let written = 0;
    let cancelled!: () => void;
    const agentSawCancel = new Promise<void>((resolve) => {
      cancelled = resolve;
    });
    // Writes as a well-behaved agent does: waits for 'drain' whenever write() says so.
    const endless: ListHandler = (call) => {
      let stop = false;
      call.on("cancelled", () => {
        stop = true;
        cancelled();
      });
      (async () => {
        while (!stop && written < total) {
          written++;
          if (!call.write({ message: summary(String(written), written) })) {
            await Promise.race([once(call, "drain"), agentSawCancel]);
          }
        }
        if (!stop) call.end();
      })();
    };
    const fleet = await scriptedServer({ big: endless });
    try {
      let received = 0;
      let writtenWhileIdle = 0;
      for await (const event of fleetMessages(fleet.hosts, clients, ALL_REQUEST, { timeoutMs: 30_000 })) {
        if (event.kind === "item" && ++received === 1000) {
          // A reader that pauses: a controller reading ahead would let the agent run on meanwhile
          // (~9,000 messages a second here, measured); flow control holds it at about one
          // HTTP/2 window (~2,400 of these small messages), however long the pause.
          await new Promise((resolve) => setTimeout(resolve, 1500));
          writtenWhileIdle = written;
          break;
        }
      }
      await agentSawCancel;
      assert.equal(received, 1000);
      assert.ok(
        writtenWhileIdle < received + 5_000,
        `the agent wrote ${writtenWhileIdle} of ${total} for a reader of 1000`,
      );
    } finally {
      fleet.stop();
    }
  });

  it("ends a host silent for the timeout as timed_out; a reader slower than the timeout is no silence", async () => {
    const silent: ListHandler = (call) => {
      call.write({ message: summary("1", 1) });
      call.write({ message: summary("2", 2) });
      // ...and nothing more, never ending.
    };
    const fleet = await scriptedServer({
      silent,
      steady: streamOf(Array.from({ length: 50 }, (_, i) => summary(String(100 + i), i))),
    });
    try {
      const events: FleetStreamEvent<MessageSummary>[] = [];
      const options = { timeoutMs: 1000, bufferPerHost: 1 };
      for await (const event of fleetMessages(fleet.hosts, clients, ALL_REQUEST, options)) {
        events.push(event);
        // 50 messages at 40 ms each: the reader holds the steady host back for 2 s in all.
        if (event.kind === "item") await new Promise((resolve) => setTimeout(resolve, 40));
      }
      const outcome = (name: string) =>
        events.flatMap((e) => (e.kind === "host" && e.outcome.host.name === name ? [e.outcome] : []))[0];
      assert.deepEqual([outcome("steady")?.state, outcome("steady")?.value], ["ok", 50]);
      assert.equal(outcome("silent")?.state, "timed_out");
      assert.equal(outcome("silent")?.error, "DEADLINE_EXCEEDED: the agent sent nothing for 1 s (--timeout)");
      assert.equal(events.filter((e) => e.kind === "item" && e.host.name === "silent").length, 2);
    } finally {
      fleet.stop();
    }
  });

  it("skips the agent's empty keep-alive responses, which keep a quiet host from timing out", async () => {
    const quiet: ListHandler = (call) => {
      let beats = 0;
      const timer = setInterval(() => {
        if (++beats <= 6) {
          call.write({});
          return;
        }
        clearInterval(timer);
        call.write({ message: summary("42", 1) });
        call.end();
      }, 250);
      call.on("cancelled", () => clearInterval(timer));
    };
    const fleet = await scriptedServer({ quiet });
    try {
      // 1.75 s before the message: longer than the timeout, but never silent for it.
      const events = await collect(fleetMessages(fleet.hosts, clients, ALL_REQUEST, { timeoutMs: 1000 }));
      assert.deepEqual(events.map(describeEvent), ["quiet:42", "quiet=ok"]);
    } finally {
      fleet.stop();
    }
  });
});
