// Purging a fleet's queues through qmfleet, end to end: real qmfleet-agent processes over mutual
// TLS on loopback, queues the queue builder wrote (files named by their inodes), the qmail-send
// stand-in running beside the agents that have one (a real process holding lock/sendmutex,
// retiring messages through its own code path and logging as qmail-send does), the operator's
// admin certificate, and a read-only one. The incident: a bounce storm whose Subject is Japanese,
// ISO-2022-JP encoded, found by its decoded text.
//
// Hosts: mx1, mx2 (qmail-send runs: live purges), mx3 (qmail-send runs: stopped purge), mx4 (no
// qmail-send), and "bad", whose stop command fails (for the canary). The tests run in order on
// the same fleet, each on its own hosts or messages.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runQmfleet } from "@qmfleet/cli";
import { type FleetCertificates, generateFleetCertificates } from "../certs.js";
import { JAPANESE_SUBJECTS } from "../mixed-queue.js";
import { installQmailQueue, lockHolders, type StandIn, startQmailSend } from "../qmail-send/index.js";
import { type BuiltMessage, QueueBuilder } from "../queue-builder.js";
import { type AgentProcess, type CliResult, runCli, startAgentProcess, writeInventory } from "./processes.js";

const STORM = JAPANESE_SUBJECTS.find(
  (s) => s.text === "配信失敗のお知らせ",
) as (typeof JAPANESE_SUBJECTS)[number];
const SHOP = JAPANESE_SUBJECTS.find(
  (s) => s.text === "ご注文ありがとうございます",
) as (typeof JAPANESE_SUBJECTS)[number];
const HOSTS = ["bad", "mx1", "mx2", "mx3", "mx4"] as const;
type Host = (typeof HOSTS)[number];
type Kind = "storm" | "shop" | "slow" | "notice";

interface Built {
  host: Host;
  kind: Kind;
  built: BuiltMessage;
}

function text(kind: Kind, n: number): { message: string; sender: string; to: string } {
  const received = `Received: (qmail ${3000 + n} invoked from network); 1 Jan 2026 00:00:00 -0000\n`;
  switch (kind) {
    case "storm":
      return {
        message: `${received}From: MAILER-DAEMON@mx.bounce.example\nTo: support@abcde.net\nSubject: ${STORM.iso2022jp}\n\nbounce ${n}\n`,
        sender: "",
        to: "support@abcde.net",
      };
    case "notice":
      return {
        message: `${received}From: MAILER-DAEMON@mx.bounce.example\nTo: support@abcde.net\nSubject: failure notice\n\nbounce ${n}\n`,
        sender: "",
        to: "support@abcde.net",
      };
    case "shop":
      return {
        message: `${received}From: noreply@shop.example.co.jp\nTo: r${n}@example.co.jp\nSubject: ${SHOP.iso2022jp}\n\norder ${n}\n`,
        sender: "noreply@shop.example.co.jp",
        to: `r${n}@example.co.jp`,
      };
    case "slow":
      return {
        message: `${received}From: boss@corp.example\nTo: staff${n}@slow.example\nSubject: minutes ${n}\n\nsee attached\n`,
        sender: "boss@corp.example",
        to: `staff${n}@slow.example`,
      };
  }
}

// What each host's queue holds.
const PLAN: Record<Host, Kind[]> = {
  bad: ["notice", "notice", "shop"],
  mx1: ["storm", "storm", "storm", "shop", "slow", "notice"],
  mx2: ["storm", "storm", "shop", "shop", "slow"],
  mx3: ["notice", "notice", "shop"],
  mx4: ["notice", "shop", "slow", "slow", "shop"],
};

interface HostReport {
  name: string;
  state: string;
  error?: string;
  planId?: string;
  matched?: number;
  mode: string;
  purged: number;
  retired: number;
  skippedChanged: number;
  gone: number;
  failed: number;
  awaitingRetirement: number;
  notProcessed: number;
  downtimeMs: number;
  qmailSendRestarted: boolean;
  notes: string[];
}

interface PurgeDocument {
  filter: string;
  outcomes: Array<{ host: string; id: string; outcome: string; quarantineId?: string }>;
  hosts: HostReport[];
  mode: string;
  purged: number;
  retired: number;
  skippedChanged: number;
  gone: number;
  failed: number;
  notOk: number;
}

interface PreviewDocument {
  preview: boolean;
  filter: string;
  hosts: Array<{
    name: string;
    state: string;
    planId: string;
    mode: string;
    matched: number;
    sample: { id: string }[];
  }>;
  matched: number;
  command: string;
}

describe("purging the fleet's queues through qmfleet, end to end", () => {
  let dir: string;
  let certs: FleetCertificates;
  let inventory: string;
  let readInventory: string;
  const roots = new Map<Host, string>();
  const states = new Map<Host, string>();
  const messages: Built[] = [];
  const agents: AgentProcess[] = [];
  const standIns = new Map<Host, StandIn>();

  /** qmfleet in this process (the same code behind the same flags; a child costs ~1.5 s). */
  const cli = async (...args: string[]): Promise<CliResult> => {
    let stdout = "";
    let stderr = "";
    const io = {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    };
    const code = await runQmfleet(["--inventory", inventory, ...args], io, new AbortController().signal);
    return { code, stdout, stderr };
  };
  const of = (host: Host, kind?: Kind) =>
    messages.filter((m) => m.host === host && (kind === undefined || m.kind === kind));
  const path = (m: Built, rel: string) => join(roots.get(m.host) as string, rel);
  const gone = (m: Built) => m.built.written.every((rel) => !existsSync(path(m, rel)));
  /** Every file of these messages with its bytes: what "left untouched" must keep. */
  const snapshot = (list: Built[]) =>
    new Map(
      list.flatMap((m) =>
        m.built.written.map((rel) => [`${m.host}/${rel}`, readFileSync(path(m, rel)).toString("base64")]),
      ),
    );
  /** Every regular file of a queue with its bytes (lock/ aside: qmail-send's own). */
  const wholeQueue = (host: Host) => {
    const root = roots.get(host) as string;
    const files = new Map<string, string>();
    for (const entry of readdirSync(root, { withFileTypes: true, recursive: true })) {
      const abs = join(entry.parentPath, entry.name);
      if (entry.isFile() && !abs.startsWith(join(root, "lock")))
        files.set(abs, readFileSync(abs).toString("base64"));
    }
    return files;
  };
  const audit = (host: Host) =>
    readFileSync(join(states.get(host) as string, "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-e2e-purge-"));
    certs = await generateFleetCertificates(join(dir, "pki"));
    let n = 0;
    for (const host of HOSTS) {
      const builder = QueueBuilder.create(join(dir, host, "queue"), { split: host === "mx2" ? 7 : 23 });
      roots.set(host, builder.root);
      states.set(host, join(dir, host, "state"));
      const old = Math.floor(Date.now() / 1000) - 2 * 86_400;
      for (const kind of PLAN[host]) {
        const t = text(kind, n++);
        const built = builder.add({
          message: t.message,
          sender: t.sender,
          recipients: [{ address: t.to, channel: "remote" }],
          birthTime: old,
        });
        messages.push({ host, kind, built });
      }
      builder.close();
      // qmail-send runs beside every agent but mx4's; deliveries defer, so nothing else changes.
      if (host !== "mx4") standIns.set(host, await startQmailSend(builder.root));
      const extraArgs = [
        "--qmail-queue",
        installQmailQueue(builder.root, join(dir, host)),
        "--hostname",
        `${host}.example.test`,
        // "bad": a stop command that fails, so a stopped purge there cannot stop qmail-send.
        ...(host === "bad" ? ["--qmail-send-stop", "/bin/false"] : []),
      ];
      agents.push(
        await startAgentProcess({
          queue: builder.root,
          certs,
          stateDir: states.get(host) as string,
          extraArgs,
        }),
      );
    }
    const hosts = HOSTS.map((name, i) => ({ name, address: agents[i]?.address ?? "" }));
    inventory = await writeInventory(join(dir, "fleet.yaml"), certs, hosts);
    readInventory = await writeInventory(join(dir, "read.yaml"), certs, hosts, certs.reader);
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    for (const s of standIns.values()) await s.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("previews: a plan on every host, what matched and a sample, the command that deletes; nothing changes", async () => {
    const before = [wholeQueue("mx1"), wholeQueue("mx2")];
    const { code, stdout, stderr } = await cli(`-S${STORM.text}`, "--hosts", "mx1,mx2", "--json");
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as PreviewDocument;
    assert.equal(doc.preview, true);
    assert.equal(doc.filter, `subject contains "${STORM.text}"`);
    assert.deepEqual(
      doc.hosts.map((h) => [h.name, h.state, h.mode, h.matched]),
      [
        ["mx1", "ok", "live", 3],
        ["mx2", "ok", "live", 2],
      ],
    );
    for (const h of doc.hosts) assert.match(h.planId, /^[0-9a-f]{24}$/);
    assert.deepEqual(
      doc.hosts.flatMap((h) => h.sample.map((m) => `${h.name}:${m.id}`)).sort(),
      [...of("mx1", "storm"), ...of("mx2", "storm")].map((m) => `${m.host}:${m.built.id}`).sort(),
    );
    assert.equal(doc.matched, 5);
    assert.equal(
      doc.command,
      `qmfleet --inventory ${inventory} '-S${STORM.text}' --hosts mx1,mx2 --json --yes --reason '<why>'`,
    );
    assert.deepEqual([wholeQueue("mx1"), wholeQueue("mx2")], before, "byte-identical queues");

    // The table, from the real command: per-host plans, then what to run.
    const table = await runCli(["--inventory", inventory, `-S${STORM.text}`, "--hosts", "mx1,mx2"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Purge preview: messages matching subject contains "配信失敗のお知らせ"\n/);
    assert.match(table.stdout, /^mx1 +ok +live +3 +\d+ +0 +[0-9a-f]{24} \(until \d\d:\d\d:\d\dZ\)$/m);
    assert.match(table.stdout, /^mx2 +ok +live +2 +\d+ +0 +[0-9a-f]{24} /m);
    assert.match(
      table.stdout,
      /\nWould delete 5 messages \(\d+ bytes\); 2\/2 hosts previewed\.\nNothing was deleted\./,
    );
    assert.ok(table.stdout.endsWith(" --hosts mx1,mx2 --yes --reason '<why>'\n"), table.stdout);
    assert.deepEqual([wholeQueue("mx1"), wholeQueue("mx2")], before, "byte-identical queues");
  });

  it("--yes purges the storm live on two hosts: every storm message retired, the rest byte-identical, no qmail-send warning", async () => {
    const storm = [...of("mx1", "storm"), ...of("mx2", "storm")];
    const rest = [...of("mx1"), ...of("mx2")].filter((m) => m.kind !== "storm");
    const kept = snapshot(rest);
    const marks = new Map([...standIns].map(([h, s]) => [h, s.log().length]));
    // The real command; --canary 1: one host first, the other once it purged cleanly.
    const { code, stdout, stderr } = await runCli([
      "--inventory",
      inventory,
      `-S${STORM.text}`,
      "--hosts",
      "mx1,mx2",
      "--yes",
      "--reason",
      "storm INC-7",
      "--canary",
      "1",
      "--json",
    ]);
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as PurgeDocument;
    assert.deepEqual(
      [doc.mode, doc.purged, doc.retired, doc.skippedChanged, doc.gone, doc.failed, doc.notOk],
      ["live", 5, 5, 0, 0, 0, 0],
    );
    assert.deepEqual(
      doc.hosts.map((h) => [
        h.name,
        h.state,
        h.mode,
        h.purged,
        h.retired,
        h.downtimeMs,
        h.awaitingRetirement,
      ]),
      [
        ["mx1", "ok", "live", 3, 3, 0, 0],
        ["mx2", "ok", "live", 2, 2, 0, 0],
      ],
    );
    const retired = doc.outcomes.filter((o) => o.outcome === "retired").map((o) => `${o.host}:${o.id}`);
    assert.deepEqual(retired.sort(), storm.map((m) => `${m.host}:${m.built.id}`).sort());
    for (const m of storm) assert.ok(gone(m), `${m.host}:${m.built.id} left files`);
    assert.deepEqual(snapshot(rest), kept, "every other message byte-identical");
    for (const m of storm) {
      const qs = standIns.get(m.host) as StandIn;
      await qs.waitForLog(new RegExp(`^end msg ${m.built.id}$`), { from: marks.get(m.host) ?? 0 });
    }
    for (const host of ["mx1", "mx2"] as const) {
      assert.deepEqual(
        (standIns.get(host) as StandIn).log().filter((l) => l.includes("warning:")),
        [],
      );
      const execute = audit(host).find((a) => a.event === "purge-execute");
      assert.deepEqual([execute?.who, execute?.reason], ["operator", "storm INC-7"]);
    }
  });

  it("--stopped: qmail-send on mx3 is stopped and started again (downtime reported); mx4 has none and none is started", async () => {
    const targets = [...of("mx3", "notice"), ...of("mx4", "notice")];
    const rest = [...of("mx3"), ...of("mx4")].filter((m) => m.kind !== "notice");
    const kept = snapshot(rest);
    const { code, stdout, stderr } = await cli(
      "-Sfailure notice",
      "--hosts",
      "mx3,mx4",
      "--stopped",
      "--yes",
      "--reason",
      "stopped run",
      "--json",
    );
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as PurgeDocument;
    const [mx3, mx4] = doc.hosts;
    assert.deepEqual(
      [mx3?.name, mx3?.state, mx3?.mode, mx3?.purged, mx3?.qmailSendRestarted],
      ["mx3", "ok", "stopped", 2, true],
    );
    assert.ok((mx3?.downtimeMs ?? 0) > 0, `mx3 downtime ${mx3?.downtimeMs}`);
    assert.deepEqual(
      [mx4?.name, mx4?.state, mx4?.mode, mx4?.purged, mx4?.qmailSendRestarted, mx4?.downtimeMs],
      ["mx4", "ok", "stopped", 1, false, 0],
    );
    assert.equal(doc.purged, 3);
    for (const m of targets) assert.ok(gone(m));
    assert.deepEqual(snapshot(rest), kept);
    const old = standIns.get("mx3") as StandIn;
    await old.waitForExit();
    const next = await old.successor();
    assert.deepEqual(lockHolders(join(roots.get("mx3") as string, "lock", "sendmutex")), [next.pid]);
    assert.deepEqual(
      lockHolders(join(roots.get("mx4") as string, "lock", "sendmutex")),
      [],
      "not started on mx4",
    );
  });

  it("refuses a purge to a read-only certificate on every host, and changes nothing; the admin twin previews", async () => {
    const before = wholeQueue("mx4");
    const refused = await runQmfleet(
      ["--inventory", readInventory, "-Sshop", "--hosts", "mx4", "--yes", "--reason", "r"],
      { stdout: { write: () => true }, stderr: { write: () => true } },
      new AbortController().signal,
    );
    assert.equal(refused, 2);
    const denied = await runCli([
      "--inventory",
      readInventory,
      `-S${SHOP.text}`,
      "--hosts",
      "mx4",
      "--yes",
      "--reason",
      "r",
    ]);
    assert.equal(denied.code, 2);
    assert.match(
      denied.stderr,
      /^qmfleet: mx4: denied: PERMISSION_DENIED: PreviewPurge needs the admin role; certificate CN=reader,OU=read,O=qmfleet has read$/m,
    );
    assert.match(denied.stdout, /^mx4 +denied$/m);
    assert.match(denied.stdout, /\nNothing to execute\.\n/);
    assert.deepEqual(wholeQueue("mx4"), before);
    const admin = await cli(`-S${SHOP.text}`, "--hosts", "mx4", "--json");
    assert.equal(admin.code, 0, admin.stderr);
    assert.equal((JSON.parse(admin.stdout) as PreviewDocument).hosts[0]?.matched, 2);
    assert.deepEqual(wholeQueue("mx4"), before);
  });

  it("lists the quarantine and restores a purged message through the CLI", async () => {
    const listed = await cli("--quarantine", "--hosts", "mx1", "--json");
    assert.equal(listed.code, 0, listed.stderr);
    const entries = (
      JSON.parse(listed.stdout) as {
        entries: Array<{
          host: string;
          quarantineId: string;
          originalId: string;
          reason: string;
          subject: string;
        }>;
      }
    ).entries;
    assert.deepEqual(
      entries.map((e) => e.originalId).sort(),
      of("mx1", "storm")
        .map((m) => m.built.id)
        .sort(),
    );
    assert.ok(entries.every((e) => e.reason === "storm INC-7" && e.subject === STORM.text));
    const first = entries[0] as (typeof entries)[number];
    const restored = await cli("--restore", `mx1:${first.quarantineId}`, "--reason", "false positive");
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(restored.stdout, `mx1:${first.quarantineId}: restored\n`);
    const logged = audit("mx1").find((a) => a.event === "quarantine-restore");
    assert.deepEqual(
      [logged?.quarantineId, logged?.ok, logged?.who, logged?.reason],
      [first.quarantineId, true, "operator", "false positive"],
    );
    // Back in mx1's queue: one storm message, under a new id.
    const back = await cli("-l", `-S${STORM.text}`, "--hosts", "mx1", "--json");
    const listedBack = (JSON.parse(back.stdout) as { messages: { id: string }[] }).messages;
    assert.equal(listedBack.length, 1);
    assert.ok(!of("mx1", "storm").some((m) => m.built.id === listedBack[0]?.id));
    const after = JSON.parse((await cli("--quarantine", "--hosts", "mx1", "--json")).stdout) as {
      count: number;
    };
    assert.equal(after.count, entries.length - 1);
  });

  it("-t makes the matching messages due now (info mtime), and no other", async () => {
    const matches = of("mx4", "slow");
    const others = of("mx4").filter((m) => m.kind !== "slow" && !gone(m));
    const mtime = (m: Built) => Math.floor(statSync(path(m, m.built.paths.info)).mtimeMs / 1000);
    const before = new Map(others.map((m) => [m.built.id, mtime(m)]));
    const started = Math.floor(Date.now() / 1000);
    const { code, stdout, stderr } = await cli(
      "-t@slow\\.example$",
      "--hosts",
      "mx4",
      "--reason",
      "link up",
      "--json",
    );
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as {
      hosts: Array<{ name: string; matched: number; changed: number; signaled: boolean }>;
    };
    assert.deepEqual(doc.hosts, [{ name: "mx4", state: "ok", matched: 2, changed: 2, signaled: false }]);
    for (const m of matches) assert.ok(mtime(m) >= started, `${m.built.id} is due now`);
    for (const m of others)
      assert.equal(mtime(m), before.get(m.built.id), `${m.built.id} kept its birth time`);
  });

  it("-d HOST:ID --yes purges that one message on that host", async () => {
    const [target, ...rest] = of("mx4", "shop") as [Built, ...Built[]];
    const kept = snapshot([...rest, ...of("mx4", "slow")]);
    const { code, stdout, stderr } = await cli(
      "-d",
      `mx4:${target.built.id}`,
      "--yes",
      "--reason",
      "one",
      "--json",
    );
    assert.equal(code, 0, stderr);
    const doc = JSON.parse(stdout) as PurgeDocument;
    assert.equal(doc.filter, `id mx4:${target.built.id}`);
    assert.deepEqual(
      doc.hosts.map((h) => [h.name, h.purged]),
      [["mx4", 1]],
    );
    assert.ok(gone(target));
    assert.deepEqual(snapshot([...rest, ...of("mx4", "slow")]), kept);
  });

  it("--plan-file saves a preview's plans; --plan-file --yes executes exactly them, once", async () => {
    const file = join(dir, "shop.plans.json");
    const shop = of("mx2", "shop");
    const before = wholeQueue("mx2");
    const preview = await cli(`-S${SHOP.text}`, "--hosts", "mx2", "--plan-file", file);
    assert.equal(preview.code, 0, preview.stderr);
    assert.ok(
      preview.stdout.endsWith(
        `  qmfleet --inventory ${inventory} --plan-file ${file} --yes --reason '<why>'\n`,
      ),
      preview.stdout,
    );
    assert.deepEqual(wholeQueue("mx2"), before);
    const run = await cli("--plan-file", file, "--yes", "--reason", "shop spam", "--json");
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as PurgeDocument;
    assert.deepEqual([doc.filter, doc.purged, doc.retired], [`subject contains "${SHOP.text}"`, 2, 2]);
    for (const m of shop) assert.ok(gone(m));
    const again = await cli("--plan-file", file, "--yes", "--reason", "shop spam", "--json");
    assert.equal(again.code, 2);
    const second = JSON.parse(again.stdout) as PurgeDocument;
    assert.equal(second.hosts[0]?.state, "failed");
    assert.match(
      second.hosts[0]?.error ?? "",
      /FAILED_PRECONDITION: plan [0-9a-f]{24} is unknown, expired or already executed/,
    );
  });

  it("--canary 1: a host that does not purge cleanly stops the rest, which are skipped and untouched", async () => {
    const before = wholeQueue("mx3");
    const { code, stdout, stderr } = await cli(
      `-S${SHOP.text}`,
      "--hosts",
      "bad,mx3",
      "--stopped",
      "--canary",
      "1",
      "--yes",
      "--reason",
      "canary",
    );
    assert.equal(code, 2, stderr);
    assert.match(stdout, /^bad +failed +stopped +0 +0 +0 +0 +0 +0 +see error$/m);
    assert.match(stdout, /^mx3 +skipped$/m);
    assert.match(stderr, /^qmfleet: bad: failed: cannot stop qmail-send \(pid \d+\): \/bin\/false exited 1/m);
    assert.match(
      stderr,
      /^qmfleet: mx3: skipped: not executed: canary bad \(failed\) did not purge cleanly$/m,
    );
    assert.deepEqual(wholeQueue("mx3"), before, "the skipped host's queue is untouched");
    assert.ok(
      of("bad", "shop").every((m) => !gone(m)),
      "nothing removed where qmail-send could not be stopped",
    );
    assert.ok((standIns.get("bad") as StandIn).running(), "qmail-send still runs on bad");
  });
});
