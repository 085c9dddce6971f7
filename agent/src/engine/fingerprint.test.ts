import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runSourceScript } from "@qmfleet/test";
import { FINGERPRINT_SPAN, fingerprintFile, fingerprintOf, openNoAtime } from "./fingerprint.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-fp-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function file(content: string | Buffer): string {
  const p = path.join(tmp, `m${n++}`);
  fs.writeFileSync(p, content);
  return p;
}

const MSG = "Received: (qmail 16168 invoked by uid 0); 28 Nov 2026 04:11:12 -0000\nSubject: a\n\nbody\n";

test("the fingerprint is size + header block: the body does not enter, the Received line does", () => {
  const a = fingerprintFile(file(MSG));
  assert.ok(a);
  assert.equal(a.size, Buffer.byteLength(MSG));
  assert.match(a.fingerprint, new RegExp(`^${a.size}:[0-9a-f]{32}$`));
  assert.equal(fingerprintFile(file(MSG))?.fingerprint, a.fingerprint, "same bytes, same fingerprint");
  const otherBody = MSG.replace("body", "a longer body");
  assert.notEqual(fingerprintFile(file(otherBody))?.fingerprint, a.fingerprint, "size differs");
  assert.equal(
    fingerprintFile(file(otherBody))?.fingerprint.split(":")[1],
    a.fingerprint.split(":")[1],
    "the header hash ignores the body",
  );
  const otherPid = MSG.replace("16168", "16169");
  assert.notEqual(fingerprintFile(file(otherPid))?.fingerprint, a.fingerprint);
  assert.equal(fingerprintOf(a.size, Buffer.from(MSG)), a.fingerprint);
});

test("a header block longer than one read and a file with no blank line", () => {
  const long = `X: ${"y".repeat(100_000)}\nSubject: a\n\nbody\n`;
  const p = file(long);
  assert.equal(fingerprintFile(p)?.fingerprint, fingerprintOf(Buffer.byteLength(long), fs.readFileSync(p)));
  const noBlank = Buffer.alloc(200_000, 0x61);
  const q = file(noBlank);
  const fp = fingerprintFile(q);
  assert.equal(fp?.fingerprint, fingerprintOf(noBlank.length, noBlank.subarray(0, FINGERPRINT_SPAN)));
  const changedTail = Buffer.from(noBlank);
  changedTail[150_000] = 0x62;
  assert.equal(
    fingerprintFile(file(changedTail))?.fingerprint,
    fp?.fingerprint,
    "past the span, only the size counts",
  );
});

test("a vanished file has no fingerprint; a symlink is refused, not followed", () => {
  assert.equal(fingerprintFile(path.join(tmp, "gone")), undefined);
  const target = file(MSG);
  const link = path.join(tmp, `link${n++}`);
  fs.symlinkSync(target, link);
  assert.throws(() => fingerprintFile(link), /ELOOP/);
  assert.ok(fingerprintFile(target));
});

test("reading with O_NOATIME leaves the atime alone, where a plain read moves it", () => {
  const p = file(MSG);
  // relatime updates atime when it is older than mtime: make it so, then read both ways.
  const old = new Date("2020-01-01T00:00:00Z");
  fs.utimesSync(p, old, new Date());
  const fd = openNoAtime(p);
  fs.readSync(fd, Buffer.alloc(10), 0, 10, 0);
  fs.closeSync(fd);
  assert.equal(fs.statSync(p).atimeMs, old.getTime());
  fs.readFileSync(p);
  assert.notEqual(fs.statSync(p).atimeMs, old.getTime());
});

test("a node without crypto.hash (before 20.12) is refused at load, naming what is needed; twin: with it the module loads", () => {
  // The agent's modules in a child node whose crypto has no one-shot hash, as before node 20.12.
  const withoutHash = path.join(tmp, "without-hash.cjs");
  fs.writeFileSync(
    withoutHash,
    'require("node:crypto").hash = undefined; require("node:module").syncBuiltinESMExports();\n',
  );
  const module = JSON.stringify(fileURLToPath(new URL("./fingerprint.ts", import.meta.url)));
  const load = (nodeArgs: string[]) =>
    runSourceScript(`await import(${module}); console.log("loaded");`, { nodeArgs });
  const refused = load(["--require", withoutHash]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /qmfleet needs node 20\.12 or later \(crypto\.hash\); this is node v\d+/);
  const loaded = load([]);
  assert.equal(loaded.status, 0, loaded.stderr);
  assert.equal(loaded.stdout.trim(), "loaded");
});
