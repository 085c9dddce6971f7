// `qmfleet-agent local` as operators run it: the real bin in a child process, against the real
// queue of shared/fixtures rebuilt file by file (ids are inode numbers) by the queue builder.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type RebuiltFixture, rebuildRealQueue } from "@qmfleet/test";

const AGENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = path.join(AGENT_DIR, "src", "bin", "qmfleet-agent.ts");

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function agent(...args: string[]): Result {
  const r = spawnSync(
    process.execPath,
    ["--conditions=qmfleet-source", "--import", "tsx", BIN, "local", ...args],
    {
      cwd: AGENT_DIR,
      encoding: "utf8",
    },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under dir with its bytes: proof that a command changed nothing. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const abs = path.join(entry.parentPath, entry.name);
    if (entry.isFile()) files.set(abs, fs.readFileSync(abs).toString("base64"));
    else files.set(abs, entry.isDirectory() ? "dir" : "other");
  }
  return files;
}

let tmp: string;
let fixture: RebuiltFixture;
let queue: string;
const idOf = (originalId: string) => fixture.byOriginalId.get(originalId)?.id as string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-local-"));
  queue = path.join(tmp, "queue");
  fixture = rebuildRealQueue(queue);
});

after(() => {
  fixture.builder.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("qmfleet-agent local: reading", () => {
  it("-l lists every message like qmHandle, Japanese subjects decoded", () => {
    const r = agent("--queue", queue, "-l");
    assert.equal(r.status, 0, r.stderr);
    const id = idOf("1491116");
    const n = Number(id) % 23;
    assert.ok(
      r.stdout.includes(
        `${id} (${n}, ${n}/${id})\n  Return-path: <g@src.example>\n  From: g@src.example\n  To: r8@good.example\n  Subject: パスワード再設定のお知らせ\n  Date: \n  Size: 222 bytes\n`,
      ),
      r.stdout,
    );
    assert.ok(r.stdout.includes("  Subject: 未処理\n"));
    assert.equal(r.stdout.match(/^\d+ \(\d+, \d+\/\d+\)$/gm)?.length, 14);
  });

  it("-l --json prints one document with id, sender and decoded subject per message", () => {
    const r = agent("--queue", queue, "-l", "--json");
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      messages: { id: string; sender: string; subject: string }[];
      count: number;
    };
    assert.equal(doc.count, 14);
    assert.equal(doc.messages.length, 14);
    const split = doc.messages.find((m) => m.id === idOf("1491116"));
    assert.deepEqual([split?.sender, split?.subject], ["g@src.example", "パスワード再設定のお知らせ"]);
    assert.equal(doc.messages.find((m) => m.id === idOf("1491098"))?.sender, "");
  });

  it("-L and -R list messages with local or remote recipients; -N prints ids only", () => {
    const local = agent("--queue", queue, "-L", "-N");
    assert.equal(local.status, 0, local.stderr);
    assert.deepEqual(
      local.stdout.trim().split("\n").sort(),
      // Not 1491127/1491129: they are in todo/, their recipients' channel comes from routing (remote).
      ["1491089", "1491109", "1491122"].map(idOf).sort(),
    );
    const remote = agent("--queue", queue, "-R", "-N");
    assert.equal(remote.stdout.trim().split("\n").length, 13, remote.stdout);
    assert.ok(!remote.stdout.split("\n").includes(idOf("1491109")));
  });

  it("-s starts with qmail-qstat's two lines; --json gives the numbers", () => {
    const text = agent("--queue", queue, "-s");
    assert.equal(text.status, 0, text.stderr);
    assert.ok(text.stdout.startsWith(fixture.qmailQstat), text.stdout);
    const json = JSON.parse(agent("--queue", queue, "-s", "--json").stdout) as Record<string, number>;
    assert.equal(json.messagesInQueue, 14);
    assert.equal(json.notPreprocessed, 2);
    assert.equal(json.bouncing, 1);
  });

  it("--qread prints what the real qmail-qread printed, byte for byte", () => {
    const r = agent("--queue", queue, "--qread");
    assert.equal(r.status, 0, r.stderr);
    const expected = fixture.messages.flatMap((m) => (m.qmailQread ? [m.qmailQread] : []));
    // One block per message, in readdir order (as qmail-qread's): compare the blocks.
    const blocks = r.stdout.split(/(?=^\d+ \w{3} \d{4} )/m);
    assert.deepEqual([...blocks].sort(), [...expected].sort());
    assert.equal(r.stdout, blocks.join(""));
  });

  it("-mID glued on shows the envelope, decoded headers, MIME parts and text", () => {
    const id = idOf("1491086");
    const r = agent("--queue", queue, `-m${id}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${id} \\(`));
    assert.ok(r.stdout.includes("  Subject: パスワード再設定のお知らせ\n"), r.stdout);
    assert.ok(r.stdout.includes("  1  text/plain  charset=ISO-2022-JP  7bit  5 bytes\n"), r.stdout);
    assert.ok(r.stdout.includes("Text of part 1 (text/plain):\n  body\n"), r.stdout);
    const json = JSON.parse(agent("--queue", queue, `-m${id}`, "--json").stdout) as {
      messages: { id: string; subject: string; parts: { path: string }[] }[];
    };
    assert.deepEqual(
      json.messages.map((m) => [m.id, m.subject, m.parts.map((p) => p.path)]),
      [[id, "パスワード再設定のお知らせ", ["1"]]],
    );
  });

  it("-m with an id not in the queue says so and exits 1", () => {
    const r = agent("--queue", queue, "-m99999999999");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no message 99999999999 in .*queue \(delivered meanwhile, or a wrong id\?\)/);
  });

  it("--summary counts subjects, senders and domains, with a qshape table", () => {
    const r = agent("--queue", queue, "--summary", "--json");
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      matched: number;
      groups: { by: string; key: string; count: number }[];
      shape: { rows: { domain: string; total: number }[] };
    };
    assert.equal(s.matched, 14);
    assert.deepEqual(
      s.groups.filter((g) => g.by === "subject" && g.count > 1).map((g) => [g.key, g.count]),
      [
        ["failure notice", 2],
        ["パスワード再設定のお知らせ", 2],
      ],
    );
    assert.equal(s.shape.rows[0]?.domain, "TOTAL");
    const text = agent("--queue", queue, "--summary", "-S", "failure");
    assert.ok(text.stdout.startsWith("2 messages, 379 bytes\n"), text.stdout);
    assert.ok(text.stdout.includes("Top subjects:\n  2  failure notice  (379 bytes)\n"), text.stdout);
  });

  it("--check reports nothing on the real queue, and exits 3 with the problem on a damaged one", () => {
    const clean = agent("--queue", queue, "--check");
    assert.deepEqual([clean.status, clean.stdout], [0, "no problems found\n"]);
    fixture.builder.addEntry("info/3/123.bak", { kind: "file" });
    try {
      const damaged = agent("--queue", queue, "--check", "--json");
      assert.equal(damaged.status, 3, damaged.stderr);
      const doc = JSON.parse(damaged.stdout) as { problems: { kind: string; path: string }[]; count: number };
      assert.deepEqual(
        doc.problems.map((p) => [p.kind, p.path]),
        [["odd_entry", "info/3/123.bak"]],
      );
    } finally {
      fixture.builder.removeEntry("info/3/123.bak");
    }
  });
});

describe("qmfleet-agent local: selection and dry run", () => {
  it("-S'text' --dry-run lists the Japanese subjects it selects and changes nothing", () => {
    const before = snapshot(queue);
    const r = agent("--queue", queue, "-S再設定", "--dry-run");
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      r.stdout.startsWith('Dry run: messages matching subject contains "再設定" (nothing is deleted)\n'),
    );
    assert.ok(r.stdout.includes("\nWould delete 2 messages (584 bytes)\n"), r.stdout);
    assert.deepEqual(snapshot(queue), before);
  });

  it("a selection alone previews the deletion: the mode, the command that deletes, and nothing deleted", () => {
    const before = snapshot(queue);
    const r = agent("--queue", queue, "--state-dir", path.join(tmp, "state"), "-S", "failure notice");
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      r.stdout.endsWith(
        "Mode: stopped: qmail-send is not running, and is not started\n" +
          "Nothing was deleted. To delete them:\n" +
          `  qmfleet-agent local --queue ${queue} --state-dir ${path.join(tmp, "state")} -S 'failure notice' --yes --reason '<why>'\n`,
      ),
      r.stdout,
    );
    assert.match(r.stdout, /\nWould delete 2 messages \(\d+ bytes\)\n/);
    assert.deepEqual(snapshot(queue), before);
    // A preview creates no file, not even the state directory.
    assert.equal(fs.existsSync(path.join(tmp, "state")), false);
  });

  it("takes values glued to qmHandle's letters (-habcde.net) and gives JSON dry runs", () => {
    const r = agent("--queue", queue, "-habcde.net", "--dry-run", "--json");
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      dryRun: boolean;
      filter: string;
      messages: { id: string }[];
      count: number;
    };
    assert.equal(doc.dryRun, true);
    assert.equal(doc.filter, "header ~ /abcde.net/i");
    assert.deepEqual(
      doc.messages.map((m) => m.id).sort(),
      ["1491092", "1491098", "1491100", "1491129"].map(idOf).sort(),
    );
  });

  it("ANDs criteria, negates with --not-*, and narrows -l", () => {
    const r = agent("--queue", queue, "-l", "-N", "-Sfailure notice", "--not-sender", "<>");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${idOf("1491100")}\n`);
    const bounces = agent("--queue", queue, "-f<>", "--dry-run");
    assert.ok(bounces.stdout.startsWith("Dry run: messages matching sender <> (nothing is deleted)\n"));
    assert.ok(bounces.stdout.includes("\nWould delete 1 messages (209 bytes)\n"), bounces.stdout);
    // -N: ids only, for scripts.
    assert.equal(agent("--queue", queue, "-N", "-f<>", "--dry-run").stdout, `${idOf("1491098")}\n`);
  });

  it("-D selects everything, and the dry run skips nothing committed", () => {
    const r = agent("--queue", queue, "-D", "--dry-run", "--json");
    const doc = JSON.parse(r.stdout) as { count: number; skippedBeingWritten: number };
    assert.deepEqual([doc.count, doc.skippedBeingWritten], [14, 0]);
  });
});

describe("qmfleet-agent local: errors", () => {
  it("names a bad pattern before reading the queue", () => {
    const r = agent("--queue", queue, "-h(abc", "--dry-run");
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /invalid filter, criterion 1: header regex \(-h\/-H\): invalid pattern "\(abc": missing \)/,
    );
    assert.equal(r.stdout, "");
  });

  it("says an unreadable queue is unreadable, never an empty listing", () => {
    const r = agent("--queue", path.join(tmp, "no-such-queue"), "-l");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read queue root .*no-such-queue: ENOENT/);
    assert.equal(r.stdout, "");
  });

  it("refuses --json with several actions, --dry-run without a selection, and no action at all", () => {
    assert.match(agent("--queue", queue, "-l", "-s", "--json").stderr, /--json prints one document/);
    assert.match(agent("--queue", queue, "-l", "--dry-run").stderr, /--dry-run previews a deletion/);
    assert.match(agent("--queue", queue).stderr, /nothing to do/);
    assert.match(
      agent("--queue", queue, "-s", "-Sx").stderr,
      /run -s, -m, --qread, --check, -a, --quarantine and --restore without them/,
    );
    // The passing twin: the same actions one at a time.
    assert.equal(agent("--queue", queue, "-s", "--json").status, 0);
  });
});

describe("qmfleet-agent local: hostile text", () => {
  it("shows control characters of a subject as '?', never raw to the terminal", () => {
    const built = fixture.builder.add({
      message: "Subject: =?UTF-8?Q?x=1B]0;pwned=07y?= \x1b[31mred\n\nbody\n",
    });
    try {
      const r = agent("--queue", queue, `-m${built.id}`);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(r.stdout.includes("  Subject: x?]0;pwned?y ?[31mred\n"), r.stdout);
      // \x1b would be ESC; "\x1b" never reaches the terminal.
      assert.ok(!r.stdout.includes("\x1b"));
      const json = JSON.parse(agent("--queue", queue, `-m${built.id}`, "--json").stdout) as {
        messages: { subject: string }[];
      };
      assert.equal(json.messages[0]?.subject, "x\x1b]0;pwned\x07y \x1b[31mred");
    } finally {
      for (const file of built.written) fs.rmSync(path.join(queue, file), { force: true });
    }
  });
});
