// qmHandle's read flags across a fleet, end to end: three real qmfleet-agent processes serving
// queues the queue builder wrote (every message known: host, id, sender, subject, size), asked
// through qmfleet over mutual TLS on loopback, with a read-only certificate, plus an agent that
// is down. The qmfleet command runs as a child process where its exit status and streams are the
// point, and in this process (runQmfleet, the same code behind the same flags) elsewhere: each
// child costs about a second and a half of start-up. The fleet's incident: a bounce storm to
// support@abcde.net whose Subject is Japanese, ISO-2022-JP encoded (one of them folded over two
// encoded words), found by its decoded text.

import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fingerprintFile } from "@qmfleet/agent";
import { runQmfleet } from "@qmfleet/cli";
import { type FleetCertificates, generateFleetCertificates } from "../certs.js";
import { JAPANESE_SUBJECTS } from "../mixed-queue.js";
import { QueueBuilder, type RecipientSpec } from "../queue-builder.js";
import {
  type AgentProcess,
  type CliResult,
  closedLoopbackPort,
  runCli,
  startAgentProcess,
  writeInventory,
} from "./processes.js";

const STORM_TEXT = "配信失敗のお知らせ";
const STORM = JAPANESE_SUBJECTS.find((s) => s.text === STORM_TEXT) as (typeof JAPANESE_SUBJECTS)[number];
const SHOP = JAPANESE_SUBJECTS.find(
  (s) => s.text === "ご注文ありがとうございます",
) as (typeof JAPANESE_SUBJECTS)[number];
const RESET = JAPANESE_SUBJECTS.find(
  (s) => s.text === "パスワード再設定のご案内",
) as (typeof JAPANESE_SUBJECTS)[number];

// 配信失敗 and のお知らせ as two ISO-2022-JP encoded words: whitespace between encoded words
// disappears when decoded, so the folded Subject reads as the one text.
const jis = (hex: string) =>
  `=?ISO-2022-JP?B?${Buffer.from(`1b2442${hex}1b2842`, "hex").toString("base64")}?=`;
const STORM_FOLDED = `${jis("475b3f2e3c3a4754")}\n ${jis("244e242a434e2469243b")}`;

type Kind = "storm" | "stormFolded" | "shop" | "newsletter" | "local" | "doubleBounce";

interface Planned {
  kind: Kind;
  ageMinutes: number;
  state?: "preprocessed" | "todo" | "being-written";
}

interface Expected {
  host: string;
  id: string;
  kind: Kind;
  state: string;
  sender: string;
  subject: string;
  firstRecipient: string;
  size: number;
  birth: number;
  mess: string;
}

const SUBJECT_TEXT: Record<Kind, string> = {
  storm: STORM_TEXT,
  stormFolded: STORM_TEXT,
  shop: SHOP.text,
  newsletter: RESET.text,
  local: "Re: project status",
  doubleBounce: "failure notice",
};

function spec(kind: Kind, n: number): { text: string; sender: string; recipients: RecipientSpec[] } {
  const head = (from: string, to: string, subject: string, ip: string) =>
    `Received: (qmail ${2000 + n} invoked from network); 1 Jan 2026 00:00:00 -0000\n` +
    `Received: from unknown (HELO c${n}.example) (${ip})\n  by mx.example.test with SMTP; 1 Jan 2026 00:00:00 -0000\n` +
    `From: ${from}\nTo: ${to}\nSubject: ${subject}\nMessage-ID: <${n}@mx.example.test>\n` +
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n\n";
  const body = `${"x".repeat(60)}\n`.repeat(1 + (n % 7));
  switch (kind) {
    case "storm":
    case "stormFolded":
      return {
        text: `${head("MAILER-DAEMON@bounce.example", "support@abcde.net", kind === "storm" ? STORM.iso2022jp : STORM_FOLDED, `198.51.100.${n % 200}`)}${body}`,
        sender: "",
        recipients: [{ address: "support@abcde.net", channel: "remote" }],
      };
    case "shop":
      return {
        text: `${head("shop <noreply@shop.example.co.jp>", "r@example.co.jp", SHOP.iso2022jp, "203.0.113.7")}${body}`,
        sender: "noreply@shop.example.co.jp",
        recipients: [
          { address: "r@example.co.jp", channel: "remote" },
          { address: "s@example.co.jp", channel: "remote" },
        ],
      };
    case "newsletter":
      return {
        text: `${head("info@service.example", "u@mail.example.jp", RESET.utf8, "192.0.2.9")}${body}`,
        sender: "info@service.example",
        recipients: [{ address: "u@mail.example.jp", channel: "remote" }],
      };
    case "local":
      return {
        text: `${head("User <user@corp.example>", "staff@mx.example.test", "Re: project status", "192.0.2.44")}${body}`,
        sender: "user@corp.example",
        recipients: [{ address: "staff@mx.example.test", channel: "local" }],
      };
    case "doubleBounce":
      return {
        text: `${head("MAILER-DAEMON@mx.example.test", "postmaster@mx.example.test", "failure notice", "192.0.2.1")}${body}`,
        sender: "#@[]",
        recipients: [{ address: "postmaster@mx.example.test", channel: "local" }],
      };
  }
}

const PLAN: Record<string, { split: number; bigTodo?: boolean; messages: Planned[] }> = {
  mx1: {
    split: 23,
    messages: [
      { kind: "storm", ageMinutes: 2 },
      { kind: "storm", ageMinutes: 45 },
      { kind: "storm", ageMinutes: 300 },
      { kind: "storm", ageMinutes: 4000 },
      { kind: "stormFolded", ageMinutes: 90 },
      { kind: "storm", ageMinutes: 1, state: "todo" },
      { kind: "shop", ageMinutes: 12 },
      { kind: "shop", ageMinutes: 700 },
      { kind: "newsletter", ageMinutes: 25 },
      { kind: "local", ageMinutes: 8000 },
      { kind: "doubleBounce", ageMinutes: 60 },
    ],
  },
  mx2: {
    split: 7,
    bigTodo: true,
    messages: [
      { kind: "storm", ageMinutes: 3 },
      { kind: "storm", ageMinutes: 33 },
      { kind: "storm", ageMinutes: 9000 },
      // Still being written by qmail-queue: listed, but never selected for a deletion.
      { kind: "storm", ageMinutes: 0, state: "being-written" },
      { kind: "shop", ageMinutes: 15 },
      { kind: "local", ageMinutes: 120 },
    ],
  },
  mx3: {
    split: 23,
    messages: [
      { kind: "local", ageMinutes: 5 },
      { kind: "local", ageMinutes: 6000 },
      { kind: "newsletter", ageMinutes: 50 },
    ],
  },
};

interface JsonHost {
  name: string;
  state: string;
  error?: string;
}

interface JsonMessage {
  host: string;
  id: string;
  fingerprint: string;
  state: string;
  sender: string;
  subject: string;
  subjectRaw: string;
  size: number;
  birthTime: number;
  recipients: { address: string }[];
}

interface ListDocument {
  messages: JsonMessage[];
  hosts: JsonHost[];
  count: number;
  bytes: number;
  dryRun?: boolean;
  filter?: string;
}

const key = (m: { host: string; id: string }) => `${m.host}:${m.id}`;

describe("the fleet's queues read through qmfleet, end to end", () => {
  let dir: string;
  let certs: FleetCertificates;
  let inventory: string;
  let now: number;
  const agents: AgentProcess[] = [];
  const expected: Expected[] = [];
  const roots = new Map<string, string>();
  const cliProcess = (...args: string[]) => runCli(["--inventory", inventory, ...args]);
  const cli = async (...args: string[]): Promise<CliResult> => {
    let stdout = "";
    let stderr = "";
    const io = {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
    };
    const code = await runQmfleet(["--inventory", inventory, ...args], io, new AbortController().signal);
    return { code, stdout, stderr };
  };
  const live = ["--hosts", "mx1,mx2,mx3"];
  const of = (pred: (e: Expected) => boolean) => expected.filter(pred).map(key).sort();
  const stormKinds = (e: Expected) => e.kind === "storm" || e.kind === "stormFolded";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-e2e-read-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    now = Math.floor(Date.now() / 1000);
    let n = 0;
    for (const [host, plan] of Object.entries(PLAN)) {
      const builder = QueueBuilder.create(join(dir, host, "queue"), {
        split: plan.split,
        bigTodo: plan.bigTodo ?? false,
        now,
      });
      roots.set(host, builder.root);
      for (const planned of plan.messages) {
        const { text, sender, recipients } = spec(planned.kind, n++);
        const birth = now - planned.ageMinutes * 60;
        const built = builder.add({
          message: text,
          sender,
          recipients,
          birthTime: birth,
          state: planned.state ?? "preprocessed",
        });
        expected.push({
          host,
          id: built.id,
          kind: planned.kind,
          state: planned.state ?? "preprocessed",
          sender,
          subject: SUBJECT_TEXT[planned.kind],
          firstRecipient: recipients[0]?.address ?? "",
          size: Buffer.byteLength(text),
          birth,
          mess: join(builder.root, built.paths.mess),
        });
      }
      builder.close();
      agents.push(await startAgentProcess({ queue: builder.root, certs }));
    }
    // Reading needs the read role only: the operator here holds a read-only certificate.
    inventory = await writeInventory(
      join(dir, "fleet.yaml"),
      certs,
      [
        { name: "mx1", address: agents[0]?.address ?? "" },
        { name: "mx2", address: agents[1]?.address ?? "" },
        { name: "mx3", address: agents[2]?.address ?? "" },
        { name: "down", address: `localhost:${await closedLoopbackPort()}` },
      ],
      certs.reader,
    );
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it("-l --json lists exactly the messages the builder wrote, on every host, in one document", async () => {
    const { code, stdout, stderr } = await cliProcess("-l", "--json", ...live);
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as ListDocument;
    assert.deepEqual(
      doc.hosts.map((h) => [h.name, h.state]),
      [
        ["mx1", "ok"],
        ["mx2", "ok"],
        ["mx3", "ok"],
      ],
    );
    assert.deepEqual(
      doc.messages.map(key).sort(),
      of(() => true),
    );
    assert.equal(doc.count, expected.length);
    assert.equal(
      doc.bytes,
      expected.reduce((sum, e) => sum + e.size, 0),
    );
    for (const m of doc.messages) {
      const e = expected.find((x) => key(x) === key(m)) as Expected;
      assert.deepEqual(
        [m.state, m.sender, m.subject, m.size, m.birthTime, m.recipients[0]?.address],
        [e.state, e.sender, e.subject, e.size, e.birth, e.firstRecipient],
        key(m),
      );
      assert.equal(m.fingerprint, fingerprintFile(e.mess)?.fingerprint, key(m));
    }
  });

  it("a down host is reported by name while the others answer in full (exit 2)", async () => {
    const { code, stdout, stderr } = await cli("-l", "--json");
    assert.equal(code, 2);
    const doc = JSON.parse(stdout) as ListDocument;
    assert.deepEqual(
      doc.messages.map(key).sort(),
      of(() => true),
    );
    assert.deepEqual(
      doc.hosts.map((h) => [h.name, h.state]),
      [
        ["mx1", "ok"],
        ["mx2", "ok"],
        ["mx3", "ok"],
        ["down", "unreachable"],
      ],
    );
    assert.match(String(doc.hosts[3]?.error), /^UNAVAILABLE: /);
    assert.match(stderr, /^qmfleet: down: unreachable: UNAVAILABLE: /m);
  });

  it(`-S'${STORM_TEXT}' --dry-run finds exactly the bounce storm by its decoded Subject, and deletes nothing`, async () => {
    const { code, stdout, stderr } = await cli(`-S${STORM_TEXT}`, "--dry-run", "--json", ...live);
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as ListDocument;
    assert.equal(doc.dryRun, true);
    assert.equal(doc.filter, `subject contains "${STORM_TEXT}"`);
    // Every storm message (the folded one and the one in todo/ too) but the one being written.
    const storm = of((e) => stormKinds(e) && e.state !== "being-written");
    assert.deepEqual(doc.messages.map(key).sort(), storm);
    assert.equal(storm.length, 9);
    assert.ok(doc.messages.every((m) => m.subject === STORM_TEXT));
    assert.ok(
      expected.every((e) => existsSync(e.mess)),
      "nothing was deleted",
    );
  });

  it("a purge preview needs the admin role: a read certificate is denied on every host; the dry run twin answers", async () => {
    const refused = await cliProcess("-habcde.net", ...live);
    assert.equal(refused.code, 2);
    for (const host of ["mx1", "mx2", "mx3"]) {
      assert.match(
        refused.stderr,
        new RegExp(
          `^qmfleet: ${host}: denied: PERMISSION_DENIED: PreviewPurge needs the admin role; certificate CN=reader,OU=read,O=qmfleet has read$`,
          "m",
        ),
      );
    }
    assert.match(refused.stdout, /^Would delete 0 messages \(0 bytes\); 0\/3 hosts previewed\.$/m);
    assert.ok(
      expected.every((e) => existsSync(e.mess)),
      "nothing was deleted",
    );

    const table = await cli("-habcde.net", "--dry-run", ...live);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.equal(lines[0], "Dry run: messages matching header ~ /abcde.net/i (nothing is deleted)");
    assert.match(lines[1] ?? "", /^host +id +age +size +sender +first recipient +subject$/);
    const rows = lines.slice(2, -2);
    const storm = of((e) => stormKinds(e) && e.state !== "being-written");
    assert.deepEqual(rows.map((r) => r.split(/ +/).slice(0, 2).join(":")).sort(), storm);
    for (const row of rows) assert.match(row, / {2}<> {2,}support@abcde\.net +配信失敗のお知らせ$/);
    assert.match(
      lines.at(-2) ?? "",
      new RegExp(
        `^Would delete ${storm.length} messages \\(\\d+ bytes\\); 3/3 hosts answered\\. Nothing was deleted`,
      ),
    );
    assert.equal(
      lines.at(-1),
      `  qmfleet --inventory ${inventory} -habcde.net --hosts mx1,mx2,mx3 --yes --reason '<why>'`,
    );
  });

  it("-h'abcde.net' --dry-run --json selects the same messages as the Subject did", async () => {
    const { code, stdout, stderr } = await cli("-habcde.net", "--dry-run", "--json", ...live);
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as ListDocument;
    assert.deepEqual(
      doc.messages.map(key).sort(),
      of((e) => stormKinds(e) && e.state !== "being-written"),
    );
  });

  it("an invalid pattern is refused by every host, naming it; its valid twin selects (exit 1, then 0)", async () => {
    const bad = await cliProcess("-habcde(net", "--dry-run", "--json", ...live);
    assert.equal(bad.code, 1, bad.stderr);
    const doc = JSON.parse(bad.stdout) as ListDocument;
    assert.deepEqual(doc.messages, []);
    assert.deepEqual(
      doc.hosts.map((h) => h.state),
      ["failed", "failed", "failed"],
    );
    for (const host of ["mx1", "mx2", "mx3"]) {
      assert.match(
        bad.stderr,
        new RegExp(
          `^qmfleet: ${host}: failed: INVALID_ARGUMENT: invalid filter, criterion 1: header regex \\(-h/-H\\): invalid pattern "abcde\\(net": missing \\)`,
          "m",
        ),
      );
    }
    const backreference = await cli("-F(a)\\1", "--dry-run", "--hosts", "mx1");
    assert.equal(backreference.code, 1);
    assert.match(backreference.stderr, /invalid pattern "\(a\)\\\\1": .*does not support backreferences/);

    const good = await cli("-habcde\\.net", "--dry-run", "--json", ...live);
    assert.equal(good.code, 0, good.stderr);
    assert.equal((JSON.parse(good.stdout) as ListDocument).count, 9);
  });

  it("--summary merges the hosts: counts and bytes of the same key add up, qshape too", async () => {
    const { code, stdout, stderr } = await cli("--summary", "--json", "--top", "5", ...live);
    assert.equal(code, 0, stderr);
    type G = { key: string; count: number; bytes: number; hosts: number };
    const doc = JSON.parse(stdout) as {
      hosts: JsonHost[];
      matched: number;
      matchedBytes: number;
      groups: Record<string, G[]>;
      approximate: string[];
      shape: { bucketLabels: string[]; rows: { domain: string; total: number; counts: number[] }[] };
    };
    const stormAll = expected.filter(stormKinds);
    const bytes = (list: Expected[]) => list.reduce((sum, e) => sum + e.size, 0);
    assert.equal(doc.matched, expected.length);
    assert.equal(doc.matchedBytes, bytes(expected));
    // mx1 and mx2 each hold part of the storm: one group, summed.
    assert.deepEqual(doc.groups.sender?.[0], {
      key: "",
      count: stormAll.length,
      bytes: bytes(stormAll),
      hosts: 2,
    });
    assert.deepEqual(doc.groups.subject?.[0], {
      key: STORM_TEXT,
      count: stormAll.length,
      bytes: bytes(stormAll),
      hosts: 2,
    });
    assert.deepEqual(doc.groups.recipientDomain?.[0], {
      key: "abcde.net",
      count: stormAll.length,
      bytes: bytes(stormAll),
      hosts: 2,
    });
    const local = expected.filter((e) => e.kind === "local");
    assert.deepEqual(
      doc.groups.sender?.find((g) => g.key === "user@corp.example"),
      { key: "user@corp.example", count: local.length, bytes: bytes(local), hosts: 3 },
    );
    assert.equal(doc.groups.sender?.length, 5);
    assert.deepEqual(doc.approximate, []);
    assert.equal(doc.shape.rows[0]?.domain, "TOTAL");
    assert.equal(doc.shape.rows[0]?.total, expected.length);
    const abcde = doc.shape.rows.find((r) => r.domain === "abcde.net");
    assert.equal(abcde?.total, stormAll.length);
    // Storm ages 0-3 min (4 of them: 2, 1, 3, 0), 33, 45, 90, 300, 4000 and 9000 minutes.
    assert.deepEqual(abcde?.counts, [4, 0, 0, 1, 1, 1, 1, 0, 0, 2]);
  });

  it("--summary as a table shows the fleet's top groups and the qshape table", async () => {
    const { code, stdout, stderr } = await cli("--summary", ...live);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^20 messages, \d+ bytes, on 3\/3 hosts that answered\n/);
    assert.match(stdout, /\nTop subjects:\n +count +bytes +hosts +key\n +10 +\d+ +2 +配信失敗のお知らせ\n/);
    assert.match(stdout, /\nTop senders:\n.*\n +10 +\d+ +2 +<>\n/);
    assert.match(stdout, /\n +TOTAL +20 /);
    assert.match(stdout, /\n +abcde\.net +10 +4 +0 +0 +1 +1 +1 +1 +0 +0 +2\n/);
  });

  it("-m HOST:ID shows the decoded headers and the raw message", async () => {
    const storm = expected.find(
      (e) => e.host === "mx2" && e.kind === "storm" && e.state === "preprocessed",
    ) as Expected;
    const { code, stdout, stderr } = await cliProcess(`-mmx2:${storm.id}`);
    assert.equal(code, 0, stderr);
    const [shown, raw] = stdout.split(/^--- raw message \(\d+ bytes\) ---\n/m);
    assert.match(shown ?? "", new RegExp(`^mx2:${storm.id}\n  State: preprocessed\n  Return-path: <>\n`));
    assert.match(shown ?? "", /\n {2}Recipient: remote support@abcde\.net\n/);
    assert.match(shown ?? "", new RegExp(`\n {2}Fingerprint: ${fingerprintFile(storm.mess)?.fingerprint}\n`));
    assert.match(shown ?? "", /\nHeaders \(decoded\):\n(?: {2}.*\n)* {2}Subject: 配信失敗のお知らせ\n/);
    assert.match(shown ?? "", /\nMIME parts:\n {2}1 {2}text\/plain {2}charset=ISO-2022-JP {2}7bit/);
    assert.equal(raw, readFileSync(storm.mess, "utf8"));
    assert.match(raw ?? "", /^Subject: =\?ISO-2022-JP\?B\?GyRCR1s\/Ljw6R1QkTiQqQ04kaSQ7GyhC\?=$/m);

    const json = await cli(`-mmx2:${storm.id}`, "--json");
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as {
      message: JsonMessage & { headers: { name: string; decoded: string }[] };
      rawBase64: string;
      rawBytes: number;
      hosts: JsonHost[];
    };
    assert.equal(doc.message.subject, STORM_TEXT);
    assert.equal(doc.message.headers.find((h) => h.name === "Subject")?.decoded, STORM_TEXT);
    assert.deepEqual(Buffer.from(doc.rawBase64, "base64"), readFileSync(storm.mess));
    assert.equal(doc.rawBytes, storm.size);
    assert.deepEqual(doc.hosts, [{ name: "mx2", state: "ok" }]);
  });

  it("-m ID alone is refused while several hosts are targeted; with one host it shows", async () => {
    const one = expected.find((e) => e.host === "mx3") as Expected;
    const ambiguous = await cli(`-m${one.id}`);
    assert.equal(ambiguous.code, 1);
    assert.equal(ambiguous.stdout, "");
    assert.match(
      ambiguous.stderr,
      new RegExp(
        `^qmfleet: -m ${one.id}: which host\\? 4 hosts are targeted and each numbers its own messages .*write -m HOST:${one.id}`,
      ),
    );
    const single = await cli(`-m${one.id}`, "--hosts", "mx3", "--max-bytes", "40");
    assert.equal(single.code, 0, single.stderr);
    assert.match(single.stdout, new RegExp(`^mx3:${one.id}\n`));
    assert.ok(
      single.stdout.endsWith(
        `${readFileSync(one.mess, "latin1").slice(0, 40)}\n--- cut at 40 of ${one.size} bytes (--max-bytes) ---\n`,
      ),
    );
  });

  it("--check reports each host's queue problems with the host that has them (exit 3; clean hosts 0)", async () => {
    const bounce = join(roots.get("mx3") as string, "bounce", "999999937");
    writeFileSync(bounce, "<a@b.example>:\nfailed\n");
    const { code, stdout, stderr } = await cli("--check", "--json", ...live);
    assert.equal(code, 3, stderr);
    const doc = JSON.parse(stdout) as {
      problems: { host: string; kind: string; path: string; id: string; detail: string }[];
      count: number;
    };
    // mx2's message being written by qmail-queue is reported too (intd/ without todo/).
    const writing = expected.find((e) => e.state === "being-written") as Expected;
    assert.deepEqual(doc.problems.map((p) => [p.host, p.kind, p.id]).sort(), [
      ["mx2", "being_written", writing.id],
      ["mx3", "orphan_bounce", "999999937"],
    ]);
    const orphan = doc.problems.find((p) => p.kind === "orphan_bounce");
    assert.equal(orphan?.path, "bounce/999999937");
    assert.equal(orphan?.detail, `bounce/999999937 has no mess/${999999937 % 23}/999999937`);
    assert.equal(doc.count, 2);
    const clean = await cli("--check", "--hosts", "mx1");
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stdout, "no problems found on 1/1 hosts that answered\n");
  });

  it("--sort age --desc --limit merges every host's oldest into one oldest-first stream", async () => {
    const { code, stdout, stderr } = await cli(
      "-l",
      "--sort",
      "age",
      "--desc",
      "--limit",
      "2",
      "--json",
      ...live,
    );
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as ListDocument;
    const oldestPerHost = ["mx1", "mx2", "mx3"].flatMap((host) =>
      expected
        .filter((e) => e.host === host)
        .sort((a, b) => a.birth - b.birth)
        .slice(0, 2),
    );
    assert.deepEqual(doc.messages.map(key), oldestPerHost.sort((a, b) => a.birth - b.birth).map(key));
    const noLimit = await cli("-l", "--sort", "age", ...live);
    assert.equal(noLimit.code, 1);
    assert.match(noLimit.stderr, /^qmfleet: --sort age: sorting needs a limit from 1 to 10000 per host/);
  });

  it("streams one NDJSON line per message, CSV rows, and HOST:ID with -N", async () => {
    const mx3 = of((e) => e.host === "mx3");
    const ndjson = await cli("-R", "--format", "ndjson", "--hosts", "mx3");
    assert.equal(ndjson.code, 0, ndjson.stderr);
    const lines = ndjson.stdout
      .trimEnd()
      .split("\n")
      .map(
        (l) => JSON.parse(l) as { kind: string; host?: string; id?: string; name?: string; count?: number },
      );
    const remote = of((e) => e.host === "mx3" && e.kind === "newsletter");
    assert.deepEqual(
      lines.map((l) =>
        l.kind === "message"
          ? `message ${l.host}:${l.id}`
          : l.kind === "host"
            ? `host ${l.name}`
            : `total ${l.count}`,
      ),
      [...remote.map((k) => `message ${k}`), "host mx3", `total ${remote.length}`],
    );
    const csv = await cli("-l", "--format", "csv", "--hosts", "mx3");
    assert.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.trimEnd().split("\r\n");
    assert.equal(
      rows[0],
      "host,id,fingerprint,state,birthTime,ageSeconds,size,sender,recipients,subject,from,clientIp,bouncing",
    );
    assert.deepEqual(
      rows
        .slice(1)
        .map((r) => r.split(",").slice(0, 2).join(":"))
        .sort(),
      mx3,
    );
    assert.ok(rows.some((r) => r.includes(",パスワード再設定のご案内,")));
    const numbers = await cli("-l", "-N", "--hosts", "mx3");
    assert.equal(numbers.code, 0, numbers.stderr);
    assert.deepEqual(numbers.stdout.trimEnd().split("\n").sort(), mx3);
  });

  // Last: it rewrites a message of mx3 in place.
  it("-m with a stale fingerprint is refused (the id now names another message); the current one shows", async () => {
    const target = expected.find((e) => e.host === "mx3" && e.kind === "local") as Expected;
    const listed = fingerprintFile(target.mess)?.fingerprint as string;
    const ok = await cli(`-mmx3:${target.id}:${listed}`);
    assert.equal(ok.code, 0, ok.stderr);
    // Another message under the same inode, as after the file system reused the id.
    writeFileSync(
      target.mess,
      readFileSync(target.mess, "latin1").replace("invoked from network", "invoked by uid 0000"),
      "latin1",
    );
    const current = fingerprintFile(target.mess)?.fingerprint as string;
    assert.notEqual(current, listed);
    const stale = await cliProcess(`-mmx3:${target.id}`, "--fingerprint", listed);
    assert.equal(stale.code, 2);
    assert.match(
      stale.stderr,
      new RegExp(
        `^qmfleet: mx3: failed: FAILED_PRECONDITION: message ${target.id} is not the message you listed: its fingerprint is ${current}, not ${listed}\\. Ids are inode numbers`,
        "m",
      ),
    );
    assert.doesNotMatch(stale.stdout, /raw message/);
    const fresh = await cli(`-mmx3:${target.id}:${current}`);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, /invoked by uid 0000/);
  });
});
