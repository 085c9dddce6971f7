import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import {
  envelopeBytes,
  envelopeText,
  loadRouting,
  loadVirtualDomains,
  parseInfo,
  parseRecipients,
  parseTodo,
  VirtualDomains,
} from "./envelope.js";

const b = (s: string) => Buffer.from(s, "latin1");

test("info: F<sender>, empty sender, double bounce", () => {
  assert.deepEqual(parseInfo(b("Fa@src.example\0")), { sender: "a@src.example", problems: [] });
  assert.deepEqual(parseInfo(b("F\0")), { sender: "", problems: [] });
  assert.deepEqual(parseInfo(b("F#@[]\0")), { sender: "#@[]", problems: [] });
});

test("info: malformed files are read and reported", () => {
  assert.deepEqual(parseInfo(b("Fa@b")), { sender: "a@b", problems: ["missing final NUL"] });
  assert.deepEqual(parseInfo(b("")), { sender: "", problems: ["empty info file"] });
  assert.deepEqual(parseInfo(b("Xa@b\0")), {
    sender: "",
    problems: ['unknown record type "X"', "no F record"],
  });
  assert.deepEqual(parseInfo(b("Fa@b\0Fc@d\0")).problems, ["more than one F record"]);
  assert.deepEqual(parseInfo(b("\x01a\0")).problems, ['unknown record type "\\x01"', "no F record"]);
});

test("records: NUL-terminated, no trailing empty record; an empty record is reported", () => {
  const r = parseRecipients(b("Ta\0Db\0"), "remote", VirtualDomains.none);
  assert.deepEqual(
    r.recipients.map((x) => `${x.done ? "D" : "T"}${x.address}`),
    ["Ta", "Db"],
  );
  assert.deepEqual(r.problems, []);
  assert.deepEqual(parseRecipients(b("Ta@x\0\0"), "remote", VirtualDomains.none).problems, ["empty record"]);
});

test("a problem found many times is listed once with how often, in the order first found", () => {
  const r = parseRecipients(b("Qa\0\0Ta@x\0\0Qb\0\0Tc"), "remote", VirtualDomains.none);
  assert.deepEqual(
    r.recipients.map((x) => x.address),
    ["a@x", "c"],
  );
  assert.deepEqual(r.problems, [
    'unknown record type "Q" (2 times)',
    "empty record (3 times)",
    "missing final NUL",
  ]);
  // A damaged file of a million empty records: one line, no million strings.
  const zeros = parseRecipients(Buffer.alloc(1_000_000), "local", VirtualDomains.none);
  assert.deepEqual(zeros, { recipients: [], problems: ["empty record (1000000 times)"] });
  assert.deepEqual(parseTodo(Buffer.alloc(1000)).problems, ["empty record (1000 times)", "no F record"]);
  assert.deepEqual(parseInfo(b("\0\0Fa@b\0")), { sender: "a@b", problems: ["empty record (2 times)"] });
});

test("recipients: T and D records, unknown types skipped, a last record without NUL kept", () => {
  const r = parseRecipients(b("Dok@x\0Tdefer@x\0Qodd\0Tlast@x"), "local", VirtualDomains.none);
  assert.deepEqual(
    r.recipients.map((x) => `${x.done ? "D" : "T"}${x.address}`),
    ["Dok@x", "Tdefer@x", "Tlast@x"],
  );
  assert.deepEqual(r.problems, ['unknown record type "Q"', "missing final NUL"]);
  assert.deepEqual(parseRecipients(b(""), "remote", VirtualDomains.none).problems, ["empty remote file"]);
});

test("virtual domains: the vp- prefix is taken off local recipients only, the stored form kept", () => {
  const v = new VirtualDomains(
    "vdom.example:vp\n.wild.example:w\nboss@exact.example:bx\nplain.example:\n# comment\n",
  );
  const local = parseRecipients(b("Tvp-user@vdom.example\0"), "local", v).recipients[0];
  assert.deepEqual(local, {
    channel: "local",
    address: "user@vdom.example",
    stored: "vp-user@vdom.example",
    done: false,
  });
  const remote = parseRecipients(b("Tvp-user@vdom.example\0"), "remote", v).recipients[0];
  assert.equal(remote?.address, "vp-user@vdom.example");
  assert.equal(v.strip("w-x@a.wild.example"), "x@a.wild.example");
  assert.equal(v.strip("bx-boss@exact.example"), "boss@exact.example");
  assert.equal(v.strip("bx-other@exact.example"), "bx-other@exact.example");
  assert.equal(v.strip("vp-user@VDOM.example"), "user@VDOM.example");
  assert.equal(v.strip("user@vdom.example"), "user@vdom.example", "no prefix, nothing taken");
  assert.equal(v.strip("x-y@plain.example"), "x-y@plain.example", "empty prefix: not virtual");
  assert.ok(
    v.isVirtual("u@vdom.example") && v.isVirtual("u@sub.wild.example") && v.isVirtual("boss@exact.example"),
  );
  assert.ok(!v.isVirtual("u@plain.example") && !v.isVirtual("u@other.example"));
});

test("todo/intd: u, p, F and T records", () => {
  const t = parseTodo(b("u0\0p16345\0Ft1@src.example\0Tr11@good.example\0Tr12@x\0"));
  assert.deepEqual(t, {
    uid: 0,
    pid: 16345,
    sender: "t1@src.example",
    recipients: ["r11@good.example", "r12@x"],
    problems: [],
  });
  assert.deepEqual(parseTodo(b("u0\0p1\0Tr@x\0")).problems, ["no F record"]);
  assert.deepEqual(parseTodo(b("u0\0p1\0F\0Tr@x")).problems, ["missing final NUL"]);
});

test("8-bit text: UTF-8 as text, other bytes escaped, and both map back to the exact bytes", () => {
  const cases = [
    b("a@b"),
    Buffer.from("山田@example.jp"),
    Buffer.from([0xfc, 0x40, 0x78]),
    Buffer.from("ü@x"),
  ];
  for (const bytes of cases) assert.deepEqual(envelopeBytes(envelopeText(bytes)), bytes);
  assert.equal(envelopeText(Buffer.from("山田@example.jp")), "山田@example.jp");
  // "ü" in UTF-8 (2 bytes) and latin1 0xFC (1 byte) must not read as the same text.
  assert.notEqual(envelopeText(Buffer.from([0xfc])), envelopeText(Buffer.from("ü")));
  // A record within a file: only its bytes decide (the 8-bit bytes around it do not).
  const file = Buffer.concat([Buffer.from([0xfc]), Buffer.from("T山田@x\0Ta@b\0"), Buffer.from([0xfc])]);
  assert.equal(envelopeText(file, 2, 2 + Buffer.byteLength("山田@x")), "山田@x");
  assert.equal(envelopeText(file, file.length - 5, file.length - 2), "a@b");
  assert.equal(envelopeText(file, 0, 1), "\udcfc");
});

test("control files: virtualdomains and locals (or me) beside the queue; absent files are normal", () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-env-"));
  try {
    assert.equal(loadVirtualDomains(home).size, 0);
    assert.equal(loadRouting(home).channelOf("a@anything.example"), "remote");
    fs.mkdirSync(path.join(home, "control"));
    fs.writeFileSync(path.join(home, "control", "me"), "mx1.example.test\n");
    assert.equal(loadRouting(home).channelOf("a@MX1.example.test"), "local");
    fs.writeFileSync(path.join(home, "control", "locals"), "localhost\nmx2.example.test\n");
    fs.writeFileSync(path.join(home, "control", "virtualdomains"), "vdom.example:vp\n");
    const routing = loadRouting(home);
    assert.equal(routing.channelOf("a@mx1.example.test"), "remote", "locals replaces me");
    assert.equal(routing.channelOf("a@mx2.example.test"), "local");
    assert.equal(routing.channelOf("user@vdom.example"), "local");
    assert.equal(routing.vdoms.strip("vp-user@vdom.example"), "user@vdom.example");
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
