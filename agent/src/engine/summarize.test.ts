import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { generateMixedQueue } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import type { QueuedMessage } from "./model.js";
import { scanQueueSync } from "./scan.js";
import { SHAPE_BUCKET_LABELS, Summarizer, summarize } from "./summarize.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-summarize-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const now = 1795839072;

function msg(over: Partial<QueuedMessage>): QueuedMessage {
  return {
    id: "1",
    fingerprint: "",
    state: "preprocessed",
    birthTime: now,
    size: 100,
    sender: "a@x",
    recipients: [],
    headers: { from: "", to: "", cc: "", subject: "", subjectRaw: "", date: "", messageId: "" },
    clientIp: "",
    bouncing: false,
    paths: { mess: "", info: "", local: "", remote: "", todo: "", intd: "", bounce: "" },
    ...over,
  };
}

const rcpt = (address: string, done = false) => ({
  channel: "remote" as const,
  address,
  stored: address,
  done,
});

test("the bounce storm of a mixed queue tops every dimension", async () => {
  const s = generateMixedQueue(path.join(tmp, "mixed", "queue"), { count: 500, seed: 9, now });
  const messages = [...scanQueueSync(detectLayout(s.root))].map((c) => c.message);
  const sum = await summarize(messages, {
    groupBy: ["sender", "recipientDomain", "subject", "clientIp"],
    top: 3,
    shape: true,
    now,
  });
  assert.equal(sum.matched, 500);
  assert.equal(sum.matchedBytes, s.bytes);
  assert.equal(sum.errorBound, 0);
  const top = (by: string) => sum.groups.find((g) => g.by === by);
  assert.deepEqual(
    [top("sender")?.key, top("sender")?.count],
    ["", messages.filter((m) => m.sender === "").length],
  );
  assert.equal(top("subject")?.key, "failure notice");
  assert.equal(top("recipientDomain")?.key, "abcde.net");
  assert.equal(sum.groups.filter((g) => g.by === "subject").length, 3);
  const storm = messages.filter((m) => m.headers.subject === "failure notice");
  assert.equal(top("subject")?.count, storm.length);
  assert.equal(
    top("subject")?.bytes,
    storm.reduce((b, m) => b + m.size, 0),
  );
  assert.ok(sum.shape);
  assert.deepEqual(sum.shape.bucketLabels, SHAPE_BUCKET_LABELS);
  const total = sum.shape.rows[0];
  assert.equal(total?.domain, "TOTAL");
  assert.equal(
    total?.counts.reduce((a, b) => a + b, 0),
    total?.total,
  );
  for (const row of sum.shape.rows)
    assert.equal(
      row.counts.reduce((a, b) => a + b, 0),
      row.total,
      row.domain,
    );
});

test("qshape buckets: under 5 minutes, 5-10, ..., 1280 and more", () => {
  const s = new Summarizer({ groupBy: [], shape: true, now });
  for (const minutes of [0, 4.9, 5, 19, 1279, 1280, 100000]) {
    s.add(msg({ birthTime: now - minutes * 60, recipients: [rcpt("a@d.example")] }));
  }
  const row = s.result().shape?.rows[1];
  assert.equal(row?.domain, "d.example");
  //                    5  10 20 40 80 160 320 640 1280 1280+
  assert.deepEqual(row?.counts, [2, 1, 1, 0, 0, 0, 0, 0, 1, 2]);
});

test("a message counts once per pending recipient domain", () => {
  const s = new Summarizer({ groupBy: ["recipientDomain"], now });
  s.add(
    msg({
      recipients: [rcpt("a@x.example"), rcpt("b@X.example"), rcpt("c@y.example"), rcpt("d@z.example", true)],
    }),
  );
  assert.deepEqual(
    s.result().groups.map((g) => `${g.key}:${g.count}`),
    ["x.example:1", "y.example:1"],
  );
});

test("memory stays bounded: a long tail is pruned, heavy keys survive with exact counts", () => {
  const s = new Summarizer({ groupBy: ["subject"], top: 2, now, maxKeys: 50 });
  for (let i = 0; i < 10_000; i++) {
    const subject = i % 3 === 0 ? "storm" : i % 5 === 0 ? "second" : `unique ${i}`;
    s.add(
      msg({ headers: { from: "", to: "", cc: "", subject, subjectRaw: subject, date: "", messageId: "" } }),
    );
  }
  const r = s.result();
  assert.deepEqual(
    r.groups.map((g) => [g.key, g.count]),
    [
      ["storm", 3334],
      ["second", 1333],
    ],
  );
  assert.ok(r.errorBound >= 1, "the prune is reported");
  const exact = new Summarizer({ groupBy: ["subject"], now });
  exact.add(msg({}));
  assert.equal(exact.result().errorBound, 0);
});
