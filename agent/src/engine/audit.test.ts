import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { AuditLog, localIdentity } from "./audit.js";

let dir: string;
let file: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-"));
  file = path.join(dir, "audit", "audit.log");
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every line of the log and its rotated files, oldest first, parsed. */
function allLines(): Array<Record<string, unknown>> {
  const files = fs
    .readdirSync(path.dirname(file))
    .filter((n) => n.startsWith("audit.log"))
    .sort((a, b) => (Number(b.split(".")[2] ?? 0) || 0) - (Number(a.split(".")[2] ?? 0) || 0));
  return files.flatMap((n) =>
    fs
      .readFileSync(path.join(path.dirname(file), n), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

describe("audit log", () => {
  it("appends one JSON line per record, with time and fields, and keeps them across reopening", () => {
    const log = new AuditLog(file);
    log.append({ event: "purge-execute", who: "ops-cert", reason: "spam run", planId: "p1" });
    log.close();
    const again = new AuditLog(file);
    again.append({ event: "purge-report", planId: "p1", purged: 3 });
    again.close();
    const lines = allLines();
    assert.equal(lines.length, 2);
    assert.equal(lines[0]?.who, "ops-cert");
    assert.equal(lines[1]?.purged, 3);
    assert.match(String(lines[0]?.at), /^\d{4}-\d\d-\d\dT/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it("rotates by size, keeps `keep` files, and loses no line in between", () => {
    const log = new AuditLog(file, { maxBytes: 400, keep: 50 });
    for (let i = 0; i < 100; i++) log.append({ event: "purge-message", n: i }, i % 10 === 0);
    log.close();
    const names = fs.readdirSync(path.dirname(file));
    assert.ok(names.length > 5, `rotated into several files: ${names.join(" ")}`);
    for (const n of names) assert.ok(fs.statSync(path.join(path.dirname(file), n)).size <= 400);
    assert.deepEqual(
      allLines().map((l) => l.n),
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  it("drops the oldest files beyond `keep`", () => {
    const log = new AuditLog(file, { maxBytes: 200, keep: 2 });
    for (let i = 0; i < 40; i++) log.append({ event: "x", n: i }, false);
    log.close();
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), ["audit.log", "audit.log.1", "audit.log.2"]);
    const kept = allLines().map((l) => l.n as number);
    assert.equal(kept.at(-1), 39, "the newest line is kept");
    assert.deepEqual(
      kept,
      Array.from({ length: kept.length }, (_, i) => 40 - kept.length + i),
      "in order, no gap",
    );
  });

  it("two writers (another process rotating) never lose a line", () => {
    const a = new AuditLog(file, { maxBytes: 300, keep: 100 });
    a.append({ event: "a", n: 0 });
    // Another process rotates the file under writer a.
    const script = `
      import { AuditLog } from ${JSON.stringify(path.join(import.meta.dirname, "audit.ts"))};
      const b = new AuditLog(${JSON.stringify(file)}, { maxBytes: 300, keep: 100 });
      for (let i = 0; i < 20; i++) b.append({ event: "b", n: i });
      b.close();
    `;
    const scriptFile = path.join(dir, "writer.mts");
    fs.writeFileSync(scriptFile, script);
    const r = spawnSync(process.execPath, ["--import", "tsx", scriptFile], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    for (let i = 1; i < 10; i++) a.append({ event: "a", n: i });
    a.close();
    const lines = allLines();
    assert.deepEqual(
      lines.filter((l) => l.event === "a").map((l) => l.n),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(lines.filter((l) => l.event === "b").length, 20);
  });

  it("names the local user, and the sudo user behind root", () => {
    const me = os.userInfo().username;
    assert.equal(localIdentity({}), me);
    assert.equal(localIdentity({ SUDO_USER: "alice" }), `${me} (sudo by alice)`);
  });
});
