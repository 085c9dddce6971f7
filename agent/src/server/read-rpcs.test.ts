// The read RPCs (ListMessages, Summarize, ReadMessage, CheckQueue) served by a real agent server
// in process, over gRPC on loopback (plaintext: mutual TLS is exercised end to end in
// test/src/e2e), against a queue the queue builder wrote.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { type ClientReadableStream, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  AgentServiceClient,
  type Filter,
  GroupBy,
  type ListMessagesRequest,
  type ListMessagesResponse,
  MessageState,
  type MessageSummary,
  type ReadMessageResponse,
  SortKey,
  type SummarizeRequest,
  type SummarizeResponse,
} from "@qmfleet/proto";
import { type BuiltMessage, QueueBuilder } from "@qmfleet/test";
import { listMessages } from "./handlers/list-messages.js";
import type { CallContext } from "./rpc.js";
import { RpcError } from "./rpc-error.js";
import { type AgentServer, startAgentServer } from "./server.js";

const STORM_SUBJECT = "=?ISO-2022-JP?B?GyRCR1s/Ljw6R1QkTiQqQ04kaSQ7GyhC?="; // 配信失敗のお知らせ
const STORM_TEXT = "配信失敗のお知らせ";
const SHOP_SUBJECT = "=?ISO-2022-JP?B?GyRCJDRDbUo4JCIkaiQsJEgkJiQ0JDYkJCReJDkbKEI=?="; // ご注文ありがとうございます
// Ages are counted against the agent's clock: birth times are set relative to it.
const NOW = Math.floor(Date.now() / 1000);

interface Built {
  built: BuiltMessage;
  kind: "storm" | "shop" | "local" | "todo";
  birth: number;
  size: number;
}

function message(subject: string, to: string, bodyLines: number, n: number): string {
  return (
    `Received: (qmail ${1000 + n} invoked from network); 1 Jan 2027 00:00:00 -0000\n` +
    `Received: from unknown (HELO c.example) (198.51.100.${n})\n  by mx1.example.test with SMTP; 1 Jan 2027 00:00:00 -0000\n` +
    `To: ${to}\nSubject: ${subject}\n\n${"body line\n".repeat(bodyLines)}`
  );
}

function buildQueue(root: string): { builder: QueueBuilder; messages: Built[] } {
  const builder = QueueBuilder.create(root, { split: 7, now: NOW });
  const messages: Built[] = [];
  const add = (kind: Built["kind"], n: number, ageMinutes: number, bodyLines: number) => {
    const birth = NOW - ageMinutes * 60;
    const text =
      kind === "storm"
        ? message(STORM_SUBJECT, "support@abcde.net", bodyLines, n)
        : kind === "shop"
          ? message(SHOP_SUBJECT, "r@example.co.jp", bodyLines, n)
          : message("Re: status", "staff@mx1.example.test", bodyLines, n);
    const built = builder.add({
      message: text,
      sender: kind === "storm" ? "" : kind === "shop" ? "noreply@shop.example.co.jp" : "user@corp.example",
      recipients:
        kind === "storm"
          ? [{ address: "support@abcde.net", channel: "remote" }]
          : kind === "shop"
            ? [{ address: "r@example.co.jp", channel: "remote" }]
            : [{ address: "staff@mx1.example.test", channel: "local" }],
      birthTime: birth,
      state: kind === "todo" ? "todo" : "preprocessed",
    });
    messages.push({ built, kind, birth, size: Buffer.byteLength(text) });
  };
  add("storm", 1, 3, 5);
  add("storm", 2, 30, 50);
  add("storm", 3, 300, 1);
  add("storm", 4, 3000, 20);
  add("shop", 5, 7, 2);
  add("shop", 6, 70, 9);
  add("shop", 7, 700, 30);
  add("local", 8, 15, 4);
  add("local", 9, 1500, 3);
  add("todo", 10, 1, 6);
  return { builder, messages };
}

const ALL: Filter = { criteria: [{ negate: false, all: true }] };

function deadline(): Partial<{ deadline: Date }> {
  return { deadline: new Date(Date.now() + 20_000) };
}

function collect<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.on("data", (item: T) => items.push(item));
    stream.on("error", reject);
    stream.on("end", () => resolve(items));
  });
}

async function rejection(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  assert.fail("the call succeeded");
}

describe("read RPCs", () => {
  let dir: string;
  let built: Built[];
  let builder: QueueBuilder;
  let server: AgentServer;
  let client: AgentServiceClient;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-read-rpcs-"));
    ({ builder, messages: built } = buildQueue(path.join(dir, "queue")));
    server = await startAgentServer({
      queueRoot: builder.root,
      listen: "127.0.0.1:0",
      insecureLoopback: true,
      hostname: "mx1",
    });
    client = new AgentServiceClient(server.address, credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await server.shutdown(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const list = (request: Partial<ListMessagesRequest>): Promise<MessageSummary[]> =>
    collect(
      client.listMessages(
        { limit: 0, sort: SortKey.SORT_KEY_UNSPECIFIED, descending: false, ...request },
        deadline(),
      ),
    ).then((items: ListMessagesResponse[]) => items.map((r) => r.message as MessageSummary));

  const idsOf = (kind?: Built["kind"]) =>
    built.filter((m) => kind === undefined || m.kind === kind).map((m) => m.built.id);

  describe("ListMessages", () => {
    it("streams every message of the queue with its envelope, decoded subject and fingerprint", async () => {
      const messages = await list({ filter: ALL });
      assert.deepEqual(messages.map((m) => m.ref?.id).sort(), idsOf().sort());
      for (const m of messages) {
        const expected = built.find((b) => b.built.id === m.ref?.id) as Built;
        assert.equal(m.size, expected.size);
        assert.equal(m.birthTimeUnix, expected.birth);
        assert.match(String(m.ref?.fingerprint), new RegExp(`^${expected.size}:[0-9a-f]{32}$`));
        if (expected.kind === "storm") {
          assert.equal(m.sender, "");
          assert.equal(m.headers?.subject, STORM_TEXT);
          assert.equal(m.headers?.subjectRaw, STORM_SUBJECT);
          assert.deepEqual(
            m.recipients.map((r) => r.address),
            ["support@abcde.net"],
          );
        }
        assert.equal(
          m.state,
          expected.kind === "todo"
            ? MessageState.MESSAGE_STATE_TODO
            : MessageState.MESSAGE_STATE_PREPROCESSED,
        );
      }
    });

    it("sends only what the filter selects: a Japanese subject by its decoded text", async () => {
      const messages = await list({ filter: { criteria: [{ negate: false, subjectContains: STORM_TEXT }] } });
      assert.deepEqual(messages.map((m) => m.ref?.id).sort(), idsOf("storm").sort());
    });

    it("stops an unsorted stream at the limit", async () => {
      const messages = await list({ filter: ALL, limit: 4 });
      assert.equal(messages.length, 4);
      assert.ok(messages.every((m) => idsOf().includes(m.ref?.id ?? "")));
    });

    it("sorts by age (oldest first with descending) and keeps the limit", async () => {
      const oldest = await list({ filter: ALL, sort: SortKey.SORT_KEY_AGE, descending: true, limit: 3 });
      const expected = [...built].sort((a, b) => a.birth - b.birth).slice(0, 3);
      assert.deepEqual(
        oldest.map((m) => m.ref?.id),
        expected.map((m) => m.built.id),
      );
      const smallest = await list({ filter: ALL, sort: SortKey.SORT_KEY_SIZE, limit: 100 });
      assert.deepEqual(
        smallest.map((m) => m.size),
        built.map((m) => m.size).sort((a, b) => a - b),
      );
    });

    it("refuses a sort without a limit, saying why (the twin above sorts with one)", async () => {
      const error = await rejection(list({ filter: ALL, sort: SortKey.SORT_KEY_AGE }));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /^ListMessages: sorting needs a limit from 1 to 10000 per host \(got 0\)/);
    });

    it("refuses an invalid pattern by name; the valid twin selects the abcde.net messages", async () => {
      const bad = await rejection(
        list({
          filter: {
            criteria: [{ negate: false, headerRegex: { source: "abcde(net", caseInsensitive: true } }],
          },
        }),
      );
      assert.equal(bad.code, status.INVALID_ARGUMENT);
      assert.match(
        bad.details,
        /^invalid filter, criterion 1: header regex \(-h\/-H\): invalid pattern "abcde\(net": missing \)/,
      );
      const good = await list({
        filter: {
          criteria: [{ negate: false, headerRegex: { source: "abcde\\.net", caseInsensitive: true } }],
        },
      });
      assert.deepEqual(good.map((m) => m.ref?.id).sort(), idsOf("storm").sort());
    });

    it("refuses an empty filter instead of answering 0 messages", async () => {
      const error = await rejection(list({ filter: { criteria: [] } }));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /^ListMessages needs a filter: an empty one selects nothing/);
    });

    it("stops scanning when the client cancels, also while nothing is sent", async () => {
      const abort = new AbortController();
      const ctx: CallContext = {
        agent: server.config,
        role: "read",
        peer: "test",
        caller: "test",
        signal: abort.signal,
        deadline: new Date(Date.now() + 20_000),
      };
      const sent: string[] = [];
      // The client goes away after the second message: the scan must not go on to the others.
      const send = async (response: ListMessagesResponse) => {
        // Empty responses are keep-alives, not messages.
        if (!response.message) return;
        sent.push(response.message.ref?.id ?? "");
        if (sent.length === 2) abort.abort();
      };
      await assert.rejects(
        listMessages.handle({ filter: ALL, limit: 0, sort: 0, descending: false }, ctx, send),
        (error: unknown) => error instanceof RpcError && error.code === status.CANCELLED,
      );
      assert.equal(sent.length, 2);
      // A sorted listing sends nothing until the scan ends: cancelled first, it sends nothing.
      await assert.rejects(
        listMessages.handle(
          { filter: ALL, limit: 5, sort: SortKey.SORT_KEY_AGE, descending: false },
          ctx,
          send,
        ),
        (error: unknown) => error instanceof RpcError && error.code === status.CANCELLED,
      );
      assert.equal(sent.length, 2);
    });
  });

  describe("Summarize", () => {
    const summarize = (request: Partial<SummarizeRequest>) =>
      new Promise<SummarizeResponse>((resolve, reject) =>
        client.summarize(
          { groupBy: [], top: 0, shape: false, ...request },
          new Metadata(),
          deadline(),
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );

    it("counts the selected messages by sender, domain and subject, with the qshape table", async () => {
      const s = await summarize({ filter: ALL, shape: true });
      assert.equal(s.matched, built.length);
      assert.equal(
        s.matchedBytes,
        built.reduce((sum, m) => sum + m.size, 0),
      );
      const group = (by: GroupBy, key: string) => s.groups.find((g) => g.by === by && g.key === key);
      const storm = built.filter((m) => m.kind === "storm");
      assert.deepEqual(group(GroupBy.GROUP_BY_SENDER, ""), {
        by: GroupBy.GROUP_BY_SENDER,
        key: "",
        count: storm.length,
        bytes: storm.reduce((sum, m) => sum + m.size, 0),
      });
      assert.equal(group(GroupBy.GROUP_BY_SUBJECT, STORM_TEXT)?.count, storm.length);
      assert.equal(group(GroupBy.GROUP_BY_RECIPIENT_DOMAIN, "abcde.net")?.count, storm.length);
      assert.equal(group(GroupBy.GROUP_BY_CLIENT_IP, "198.51.100.1")?.count, 1);
      assert.equal(s.shape?.rows[0]?.domain, "TOTAL");
      assert.equal(s.shape?.rows[0]?.total, built.length);
      const abcde = s.shape?.rows.find((r) => r.domain === "abcde.net");
      // Storm ages 3, 30, 300 and 3000 minutes: qshape buckets <5, 20-40, 160-320, 1280+.
      assert.deepEqual(abcde?.counts, [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]);
    });

    it("summarizes only the selected messages, in the dimensions asked for", async () => {
      const s = await summarize({
        filter: { criteria: [{ negate: false, senderExact: "noreply@shop.example.co.jp" }] },
        groupBy: [GroupBy.GROUP_BY_SENDER],
        top: 5,
      });
      assert.equal(s.matched, 3);
      assert.deepEqual(
        s.groups.map((g) => [g.by, g.key, g.count]),
        [[GroupBy.GROUP_BY_SENDER, "noreply@shop.example.co.jp", 3]],
      );
      assert.equal(s.shape, undefined);
    });

    it("refuses an unknown dimension by number", async () => {
      const error = await rejection(summarize({ filter: ALL, groupBy: [GroupBy.GROUP_BY_UNSPECIFIED] }));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /^Summarize: group_by 0 is not a dimension/);
    });
  });

  describe("ReadMessage", () => {
    const read = (id: string, fingerprint: string, maxBytes = 0) =>
      collect(client.readMessage({ ref: { id, fingerprint }, maxBytes }, deadline()));

    function split(responses: ReadMessageResponse[]) {
      const [first, ...rest] = responses;
      assert.ok(first?.detail, "the detail comes first");
      assert.ok(rest.every((r) => r.rawChunk !== undefined && r.detail === undefined));
      return { detail: first.detail, raw: Buffer.concat(rest.map((r) => r.rawChunk as Buffer)) };
    }

    it("sends the detail, then the raw message; the listed fingerprint is accepted", async () => {
      const storm = built.find((m) => m.kind === "storm") as Built;
      const [listed] = await list({
        filter: { criteria: [{ negate: false, ids: { ids: [storm.built.id] } }] },
      });
      const { detail, raw } = split(await read(storm.built.id, listed?.ref?.fingerprint ?? ""));
      assert.equal(detail.summary?.ref?.fingerprint, listed?.ref?.fingerprint);
      assert.equal(detail.summary?.headers?.subject, STORM_TEXT);
      const subject = detail.headers.find((h) => h.name === "Subject");
      assert.deepEqual(subject, { name: "Subject", raw: `Subject: ${STORM_SUBJECT}`, decoded: STORM_TEXT });
      assert.deepEqual(
        detail.parts.map((p) => [p.path, p.contentType]),
        [["1", "text/plain"]],
      );
      assert.equal(detail.textPreview, "body line\n".repeat(5));
      assert.deepEqual(raw, fs.readFileSync(path.join(builder.root, storm.built.paths.mess)));
    });

    it("caps the raw bytes at max_bytes", async () => {
      const big = built.find((m) => m.kind === "storm" && m.size > 300) as Built;
      const { raw } = split(await read(big.built.id, "", 100));
      assert.equal(raw.length, 100);
      assert.deepEqual(raw, fs.readFileSync(path.join(builder.root, big.built.paths.mess)).subarray(0, 100));
    });

    it("refuses a fingerprint that is not the message's: the id may have been reused", async () => {
      const shop = built.find((m) => m.kind === "shop") as Built;
      const stale = `${shop.size}:00000000000000000000000000000000`;
      const error = await rejection(read(shop.built.id, stale));
      assert.equal(error.code, status.FAILED_PRECONDITION);
      assert.match(
        error.details,
        new RegExp(
          `^message ${shop.built.id} is not the message you listed: its fingerprint is ${shop.size}:[0-9a-f]{32}, not ${stale}\\. Ids are inode numbers`,
        ),
      );
    });

    it("answers NOT_FOUND for an id that is not queued and INVALID_ARGUMENT for no id", async () => {
      const missing = String(BigInt(idsOf().reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b))) + 999_983n);
      const notFound = await rejection(read(missing, ""));
      assert.equal(notFound.code, status.NOT_FOUND);
      assert.match(notFound.details, new RegExp(`^no message ${missing} in `));
      const noId = await rejection(read("", ""));
      assert.equal(noId.code, status.INVALID_ARGUMENT);
      assert.match(noId.details, /^ReadMessage needs ref\.id/);
    });
  });

  describe("CheckQueue", () => {
    const check = () => collect(client.checkQueue({}, deadline())).then((r) => r.map((x) => x.problem));

    it("reports nothing on a consistent queue, then the orphan bounce added to it", async () => {
      assert.deepEqual(await check(), []);
      builder.addEntry("bounce/999999937", { kind: "file", content: "<a@b>:\nfailed\n" });
      try {
        const problems = await check();
        assert.deepEqual(
          problems.map((p) => [p?.kind, p?.path, p?.id]),
          [["orphan_bounce", "bounce/999999937", "999999937"]],
        );
      } finally {
        builder.removeEntry("bounce/999999937");
      }
    });
  });
});
