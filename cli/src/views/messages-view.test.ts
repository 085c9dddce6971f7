import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { HostOutcome } from "@qmfleet/controller";
import { Channel, MessageState, type MessageSummary } from "@qmfleet/proto";
import { displayWidth } from "../text-width.js";
import { type ListView, type ListViewOptions, listView } from "./messages-view.js";

const NOW = 1_800_000_000;

function message(id: string, subject: string, sender = ""): MessageSummary {
  return {
    ref: { id, fingerprint: `120:${id}` },
    state: MessageState.MESSAGE_STATE_PREPROCESSED,
    birthTimeUnix: NOW - 3725,
    size: 120,
    sender,
    recipients: [
      {
        channel: Channel.CHANNEL_REMOTE,
        address: "support@abcde.net",
        storedAddress: "support@abcde.net",
        done: false,
      },
      {
        channel: Channel.CHANNEL_LOCAL,
        address: "u@vdom.example",
        storedAddress: "vp-u@vdom.example",
        done: true,
      },
    ],
    headers: {
      from: "MAILER-DAEMON@bounce.example",
      to: "support@abcde.net",
      cc: "",
      subject,
      subjectRaw: "=?ISO-2022-JP?B?...?=",
      date: "",
      messageId: "",
    },
    clientIp: "198.51.100.7",
    bouncing: false,
  };
}

const hosts: HostOutcome<unknown>[] = [
  { host: { name: "mx1", address: "a:1", tags: [] }, state: "ok", value: 2, elapsedMs: 1 },
  {
    host: { name: "down", address: "a:2", tags: [] },
    state: "unreachable",
    error: "UNAVAILABLE: refused",
    elapsedMs: 1,
  },
];

function render(view: ListView, messages: MessageSummary[]): string {
  return (
    view.begin() +
    messages.map((m) => view.message("mx1", m)).join("") +
    hosts.map((h) => view.host(h)).join("") +
    view.end(hosts, { count: messages.length, bytes: messages.length * 120 })
  );
}

const options = (more: Partial<ListViewOptions>): ListViewOptions => ({
  format: "table",
  numbers: false,
  hostNames: ["mx1", "down"],
  now: NOW,
  ...more,
});

const LONG_JAPANESE =
  "【重要】アカウント確認のお願い【重要】アカウント確認のお願い【重要】アカウント確認のお願い";

describe("listView", () => {
  it("table: fixed columns, decoded subjects cut by display width, the null sender as <>", () => {
    const out = render(listView(options({})), [
      message("1491085", "配信失敗のお知らせ"),
      message("77", LONG_JAPANESE, "a@b"),
    ]);
    const lines = out.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^host +id +age +size +sender +first recipient +subject$/);
    assert.match(
      lines[1] ?? "",
      /^mx1 +1491085 +1h 2m +120 {2}<> +support@abcde\.net \+1 +配信失敗のお知らせ$/,
    );
    // Every row's subject column starts at the same display column, whatever the characters.
    const subjectAt = (line: string) => displayWidth(line.slice(0, line.search(/配信|【/)));
    assert.equal(subjectAt(lines[1] ?? ""), subjectAt(lines[2] ?? ""));
    // Cut to the 50-column subject column: a wide character never straddles its edge.
    const cut = (lines[2] ?? "").slice((lines[2] ?? "").indexOf("【"));
    assert.ok(cut.endsWith("…"));
    assert.ok(displayWidth(cut) >= 49 && displayWidth(cut) <= 50, cut);
    assert.ok(LONG_JAPANESE.startsWith(cut.slice(0, -1)));
    assert.equal(lines[3], "2 messages (240 bytes); 1/2 hosts answered");
  });

  it("table: a subject's control characters cannot reach the terminal", () => {
    const out = render(listView(options({})), [message("5", "hi\x1b]0;owned\x07 there")]);
    assert.ok(!out.includes("\x1b"), "no ESC in the output");
    assert.match(out, /hi\?\]0;owned\? there/);
  });

  it("table: a dry run says what it selects, that nothing was deleted, and what deletes it", () => {
    const dryRun = { filter: 'subject contains "x"', command: "qmfleet -Sx --yes --reason '<why>'" };
    const out = render(listView(options({ dryRun })), [message("5", "x")]);
    assert.match(out, /^Dry run: messages matching subject contains "x" \(nothing is deleted\)\n/);
    assert.match(out, /\nWould delete 1 messages \(120 bytes\); 1\/2 hosts answered\. Nothing was deleted/);
    assert.ok(out.endsWith("To delete what matches then:\n  qmfleet -Sx --yes --reason '<why>'\n"), out);
  });

  it("json: one document, messages then hosts, parseable also when empty", () => {
    const doc = JSON.parse(
      render(listView(options({ format: "json" })), [message("5", "配信"), message("6", "b")]),
    );
    assert.deepEqual(
      doc.messages.map((m: { host: string; id: string; subject: string }) => [m.host, m.id, m.subject]),
      [
        ["mx1", "5", "配信"],
        ["mx1", "6", "b"],
      ],
    );
    assert.deepEqual(doc.messages[0].recipients, [
      { channel: "remote", address: "support@abcde.net", done: false },
      { channel: "local", address: "u@vdom.example", stored: "vp-u@vdom.example", done: true },
    ]);
    assert.equal(doc.messages[0].ageSeconds, 3725);
    assert.deepEqual(doc.hosts, [
      { name: "mx1", state: "ok" },
      { name: "down", state: "unreachable", error: "UNAVAILABLE: refused" },
    ]);
    assert.equal(doc.count, 2);
    const dryRun = { filter: "f", command: "qmfleet -Sf --yes" };
    const empty = JSON.parse(render(listView(options({ format: "json", dryRun })), []));
    assert.deepEqual(
      [empty.dryRun, empty.filter, empty.messages, empty.count, empty.command],
      [true, "f", [], 0, "qmfleet -Sf --yes"],
    );
  });

  it("ndjson: a line per message, per host, then the total", () => {
    const lines = render(listView(options({ format: "ndjson" })), [message("5", "a")])
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.kind),
      ["message", "host", "host", "total"],
    );
    assert.deepEqual([lines[0].host, lines[0].id], ["mx1", "5"]);
    assert.deepEqual([lines[3].count, lines[3].hosts, lines[3].notOk], [1, 2, 1]);
  });

  it("csv: a header, then one quoted-where-needed row per message", () => {
    const out = render(listView(options({ format: "csv" })), [message("5", 'say "hi", 配信')]);
    const rows = out.split("\r\n");
    assert.equal(rows[0]?.split(",")[0], "host");
    assert.match(
      rows[1] ?? "",
      /^mx1,5,120:5,preprocessed,\d+,3725,120,,support@abcde\.net u@vdom\.example,"say ""hi"", 配信",/,
    );
  });

  it("-N: HOST:ID lines only", () => {
    assert.equal(
      render(listView(options({ numbers: true })), [message("5", "a"), message("6", "b")]),
      "mx1:5\nmx1:6\n",
    );
  });
});
