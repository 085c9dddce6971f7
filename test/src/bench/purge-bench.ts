// The purge benchmark (issue 4): the "failure notice" bounce storm purged from a mixed queue
// (100,000 messages by default) while a qmail-send stand-in runs, in three ways, each on a
// fresh queue built from the same seed and clock:
// - live:     qmfleet's live purge (mark T->D, ALRM, qmail-send retires): qmail-send never stops;
// - stopped:  qmfleet's stopped purge (stop, remove in qmail's order, start), with the default
//             quarantine and without it (qmHandle keeps no copy: the like-for-like row);
// - qmHandle: what `qmHandle -S'failure notice'` does, re-enacted in perl from its source:
//             stop qmail-send for the whole run (TERM, then `sleep 1 while qmail_pid`), list the
//             queue, read every mess file's headers for the Subject, unlink (mess first), restart.
// Both qmfleet modes run in a child process on the built code (purge-probe.ts) so its VmHWM is
// the purge's own peak memory. qmail-send's downtime is measured the same way for all three,
// from outside: lock/sendmutex is sampled every 10 ms, and downtime is the time no qmail-send
// process holds it.
//
//   node test/dist/bench/purge-bench.js [--count=100000] [--seed=1]   (or run.js purge)
//
// Before each run the queue is put in qmail-send's steady state: every channel file's mtime is
// set to the message's next retry, as qmail-send's pqfinish() leaves it when it exits (a queue
// fresh from the builder has every message due at once), then the stand-in is started and
// waited for until it has preprocessed todo/ and fallen quiet. Its deliveries all defer (the
// incident's undeliverable backlog), at concurrency 10 local / 20 remote.

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Filter } from "@qmfleet/agent";
import { generateMixedQueue, type MixedQueueSummary } from "../mixed-queue.js";
import { type StandIn, startQmailSend } from "../qmail-send/control.js";
import { liveComm, lockHolders } from "../qmail-send/proc-locks.js";
import { seconds } from "./harness.js";
import { describeMachine, loadAverage } from "./machine.js";
import type { PurgeProbeJob, PurgeProbeResult } from "./purge-probe.js";

const SUBJECT = "failure notice";
const FILTER: Filter = { criteria: [{ kind: "subjectContains", text: SUBJECT }] };
const SPLIT = 23;
/** How long a live purge's stragglers are watched after executePurge returns. */
const WATCH_MS = 20 * 60_000;

// qmHandle 2.0.2 (QMail::QueueHandler) for -S, step by step, without Moose: stop_qmail (no stop
// command configured: TERM to qmail-send, then poll it every second), _build_msglist,
// del_msg_subj/get_subject (the first "Subject: " line of the header block, a regex on it),
// trash_msgs (mess first, unlink in groups of 11). start_qmail is the caller's. It prints the
// phases' times and its VmHWM as one JSON line.
const QMHANDLE_S = String.raw`
use strict; use warnings; use Time::HiRes qw(time);
my ($queue, $pid, $subject) = @ARGV;
my $t0 = time;
kill 'TERM', $pid;
sleep 1 while kill 0, $pid;
my $t1 = time;
my (%msglist, %bounce, %todo);
opendir(my $bd, "$queue/bounce") or die "bounce: $!"; $bounce{$_} = 1 for grep { !/\./ } readdir $bd; closedir $bd;
opendir(my $td, "$queue/todo") or die "todo: $!"; $todo{$_} = 1 for grep { !/\./ } readdir $td; closedir $td;
opendir(my $md, "$queue/mess") or die "mess: $!";
for my $dir (grep { !/\./ } readdir $md) {
  for my $kind (qw(info local remote)) {
    opendir(my $d, "$queue/$kind/$dir") or next;
    $msglist{"$dir/$_"}{$kind} = 1 for grep { !/\./ } readdir $d;
    closedir $d;
  }
  opendir(my $d, "$queue/mess/$dir") or next;
  for my $f (grep { !/\./ } readdir $d) {
    $msglist{"$dir/$f"}{bounce} = 1 if $bounce{$f};
    $msglist{"$dir/$f"}{todo} = $f if $todo{$f};
  }
  closedir $d;
}
closedir $md;
my $t2 = time;
my @delete;
for my $msg (keys %msglist) {
  open(my $fh, '<', "$queue/mess/$msg") or die "cannot open message $msg! Is qmail-send running?\n";
  my $msgsub;
  while (<$fh>) { chomp; last if !/\S/; if (/^Subject: (.*)/) { $msgsub = $1; last } }
  close $fh;
  push @delete, $msg if $msgsub and $msgsub =~ /$subject/;
}
my $t3 = time;
my (@batch, $grouped);
$grouped = 0;
for my $msg (@delete) {
  my ($dirno, $msgno) = split m{/}, $msg;
  push @batch, "$queue/bounce/$msgno" if $msglist{$msg}{bounce};
  push @batch, "$queue/mess/$msg", "$queue/info/$msg";
  push @batch, "$queue/remote/$msg" if $msglist{$msg}{remote};
  push @batch, "$queue/local/$msg" if $msglist{$msg}{local};
  push @batch, "$queue/todo/$msglist{$msg}{todo}", "$queue/intd/$msglist{$msg}{todo}" if $msglist{$msg}{todo};
  if (++$grouped == 11) { unlink @batch; @batch = (); $grouped = 0 }
}
unlink @batch if @batch;
my $t4 = time;
open(my $st, '<', '/proc/self/status') or die; my ($hwm) = join('', <$st>) =~ /VmHWM:\s+(\d+)/;
my ($user, $system) = times;
printf qq({"matched":%d,"stopMs":%.0f,"listMs":%.0f,"scanMs":%.0f,"deleteMs":%.0f,"peakRssMB":%d,"cpuSeconds":%.2f}\n),
  scalar(@delete), ($t1-$t0)*1000, ($t2-$t1)*1000, ($t3-$t2)*1000, ($t4-$t3)*1000, $hwm/1024, $user + $system;
`;

interface QmHandleResult {
  matched: number;
  stopMs: number;
  listMs: number;
  scanMs: number;
  deleteMs: number;
  peakRssMB: number;
  cpuSeconds: number;
}

/** One row of the table, and what is said under it. */
interface ModeResult {
  mode: string;
  matched: number;
  previewMs: number | undefined;
  executeMs: number;
  untilLastRetiredMs: number | null;
  downtimeMs: number;
  peakRssMB: number;
  notes: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Every channel file's mtime becomes the message's next retry, as qmail-send's pqfinish() leaves
 * it: birth + (floor(sqrt(now - birth)) + chanskip)^2, chanskip 10 local, 20 remote.
 */
function settleSchedule(root: string, now: number): void {
  for (let n = 0; n < SPLIT; n++) {
    for (const id of fs.readdirSync(path.join(root, "info", String(n)))) {
      const birth = Math.floor(fs.statSync(path.join(root, "info", String(n), id)).mtimeMs / 1000);
      for (const [channel, skip] of [
        ["local", 10],
        ["remote", 20],
      ] as const) {
        const k = Math.floor(Math.sqrt(Math.max(0, now - birth))) + skip;
        try {
          fs.utimesSync(path.join(root, channel, String(n), id), birth + k * k, birth + k * k);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        }
      }
    }
  }
}

/**
 * Until the stand-in has preprocessed todo/ and the first deliveries of those messages are
 * over: its log still for 2 s, or 30 s after todo/ emptied (fresh messages retry 100 s and
 * 400 s after their birth, so a trickle of retries is its normal life from then on).
 */
async function settled(qs: StandIn, root: string): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  let size = -1;
  let stableSince = Date.now();
  let todoEmptySince: number | undefined;
  while (Date.now() < deadline) {
    await sleep(250);
    if (todoEmptySince === undefined && fs.readdirSync(path.join(root, "todo")).length === 0) {
      todoEmptySince = Date.now();
    }
    const now = fs.statSync(qs.logFile).size;
    if (now !== size) {
      size = now;
      stableSince = Date.now();
    }
    if (todoEmptySince === undefined) continue;
    if (Date.now() - stableSince >= 2000 || Date.now() - todoEmptySince >= 30_000) return;
  }
  throw new Error("the qmail-send stand-in did not preprocess todo/ within 15 minutes");
}

/** Samples who holds lock/sendmutex every 10 ms: downtime is the time no qmail-send holds it. */
class LockWatch {
  downMs = 0;
  /** When a qmail-send was last seen holding the lock again after a time without one. */
  upAgainAt: number | undefined;
  readonly holders = new Set<number>();
  private downSince: number | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(root: string) {
    const mutex = path.join(root, "lock", "sendmutex");
    const sample = () => {
      const holder = lockHolders(mutex).find((pid) => liveComm(pid) === "qmail-send");
      const now = performance.now();
      if (holder === undefined) {
        this.downSince ??= now;
      } else {
        this.holders.add(holder);
        if (this.downSince !== undefined) {
          this.downMs += now - this.downSince;
          this.upAgainAt = now;
        }
        this.downSince = undefined;
      }
    };
    sample();
    this.timer = setInterval(sample, 10);
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.downSince !== undefined) this.downMs += performance.now() - this.downSince;
  }
}

/** CPU seconds a process has used so far (utime + stime; USER_HZ is 100 on Linux). */
function cpuSecondsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs a program to its end without blocking this process (the lock watch keeps sampling). */
function runChild(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out.trim().split("\n").pop() ?? "");
      else reject(new Error(`${path.basename(file)} ${args[0] ?? ""} exited ${code}: ${err.trim()}`));
    });
  });
}

interface Prepared {
  work: string;
  root: string;
  summary: MixedQueueSummary;
  qs: StandIn;
}

async function prepare(
  count: number,
  seed: number,
  now: number,
  log: (l: string) => void,
): Promise<Prepared> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-purge-bench-"));
  const root = path.join(work, "queue");
  const t = performance.now();
  const summary = generateMixedQueue(root, { count, seed, split: SPLIT, now });
  settleSchedule(root, now);
  log(`  queue of ${count} built in ${seconds(performance.now() - t)}; starting the qmail-send stand-in`);
  const qs = await startQmailSend(root, {});
  await settled(qs, root);
  return { work, root, summary, qs };
}

function logSince(qs: StandIn, mark: number): string[] {
  return qs.log().slice(mark);
}

function warningsIn(lines: string[]): string[] {
  return lines.filter((l) => l.startsWith("warning:") || l.startsWith("alert:"));
}

async function qmfleetMode(p: Prepared, mode: "live" | "stopped", quarantine: boolean): Promise<ModeResult> {
  const job: PurgeProbeJob = {
    queueRoot: p.root,
    stateDir: path.join(p.work, "state"),
    quarantineDir: path.join(p.work, "quarantine"),
    mode,
    quarantine,
    filter: FILTER,
    watchMs: WATCH_MS,
  };
  const mark = p.qs.log().length;
  const standInCpu = cpuSecondsOf(p.qs.pid);
  const watch = new LockWatch(p.root);
  const probe = path.join(path.dirname(fileURLToPath(import.meta.url)), "purge-probe.js");
  let r: PurgeProbeResult;
  try {
    r = JSON.parse(await runChild(process.execPath, [probe, JSON.stringify(job)])) as PurgeProbeResult;
  } finally {
    watch.stop();
  }
  const lines = logSince(p.qs, mark);
  const notes: string[] = [];
  const rep = r.report;
  notes.push(
    `outcomes: ${rep.purged} ${mode === "live" ? "neutralized" : "removed"}, ${rep.retired} retired, ` +
      `${rep.skippedChanged} skipped (changed), ${rep.gone} gone, ${rep.failed} failed`,
  );
  if (mode === "live") {
    const pids = [...watch.holders];
    notes.push(
      `qmail-send pid ${pids.join(", ")} held lock/sendmutex throughout (${pids.length === 1 ? "never restarted" : "RESTARTED"})`,
    );
    notes.push(
      `all ${rep.purged} neutralized ${seconds(r.neutralizeMs)} into executePurge (${r.neutralizeCpuSeconds.toFixed(1)} s of CPU); ` +
        `${r.awaitingAtReturn} of them were ` +
        `not yet retired when it returned (it waits 60 s by default), ${r.neverRetired} still queued when the watch ended`,
    );
    notes.push(
      `qmail-send meanwhile: ${lines.filter((l) => l.startsWith("starting delivery")).length} deliveries started ` +
        `(the ALRM retry burst over the whole queue), ${lines.filter((l) => l.startsWith("end msg")).length} "end msg", ` +
        `${(cpuSecondsOf(p.qs.pid) - standInCpu).toFixed(1)} s of CPU`,
    );
  } else {
    notes.push(
      `engine-reported downtime ${seconds(rep.downtimeMs)} (removal ${seconds(rep.removalMs)}), restarted: ${rep.qmailSendRestarted}`,
    );
    await p.qs.successor();
  }
  const warnings = warningsIn(lines);
  notes.push(
    `stand-in warnings: ${warnings.length}${warnings.length > 0 ? ` (first: ${warnings[0]})` : ""}; ` +
      `agent CPU: preview ${r.previewCpuSeconds.toFixed(1)} s, executePurge ${r.executeCpuSeconds.toFixed(1)} s; ` +
      `peak RSS after the preview ${r.previewPeakRssMB} MB`,
  );
  // The start command names temporary paths: what matters is that and how it was started.
  for (const note of rep.notes) notes.push(`engine note: ${note.replace(/ with .*$/, "")}`);
  return {
    mode: `qmfleet ${mode}${quarantine ? "" : ", no quarantine"}`,
    matched: r.matched,
    previewMs: r.previewMs,
    executeMs: r.executeMs,
    untilLastRetiredMs: r.untilLastRetiredMs,
    downtimeMs: watch.downMs,
    peakRssMB: r.peakRssMB,
    notes,
  };
}

async function qmHandleMode(p: Prepared): Promise<{ result: ModeResult; restarted: StandIn }> {
  const mark = p.qs.log().length;
  const watch = new LockWatch(p.root);
  const started = performance.now();
  let restarted: StandIn;
  let r: QmHandleResult;
  try {
    r = JSON.parse(
      await runChild("perl", ["-e", QMHANDLE_S, p.root, String(p.qs.pid), SUBJECT]),
    ) as QmHandleResult;
    restarted = await startQmailSend(p.root, {});
  } finally {
    watch.stop();
  }
  // As for qmfleet's stopped mode: until a qmail-send holds the lock again.
  const ms = (watch.upAgainAt ?? performance.now()) - started;
  const warnings = warningsIn(logSince(p.qs, mark));
  return {
    restarted,
    result: {
      mode: "qmHandle -S (baseline)",
      matched: r.matched,
      previewMs: undefined,
      executeMs: ms,
      untilLastRetiredMs: r.stopMs + r.listMs + r.scanMs + r.deleteMs,
      downtimeMs: watch.downMs,
      peakRssMB: r.peakRssMB,
      notes: [
        `phases: stop ${seconds(r.stopMs)} (TERM, then polled every second as qmHandle does), list ${seconds(r.listMs)}, ` +
          `Subject scan ${seconds(r.scanMs)}, unlink ${seconds(r.deleteMs)}, then qmail-send started again; ` +
          `all of it with qmail-send down; no quarantine, no re-check of ids, mess removed first`,
        `stand-in warnings before the stop: ${warnings.length}; perl's CPU ${r.cpuSeconds.toFixed(1)} s; peak RSS is perl's`,
      ],
    },
  };
}

function table(results: ModeResult[]): string {
  const head = [
    "mode",
    "matched",
    "preview s",
    "execute s",
    "until last retired s",
    "qmail-send downtime s",
    "peak RSS MB",
  ];
  const s = (ms: number | null | undefined) =>
    ms === undefined ? "-" : ms === null ? "never" : (ms / 1000).toFixed(2);
  const rows = results.map((r) => [
    r.mode,
    String(r.matched),
    s(r.previewMs),
    s(r.executeMs),
    s(r.untilLastRetiredMs),
    s(r.downtimeMs),
    String(r.peakRssMB),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i] ?? 0)).join(" | ")} |`;
  return [line(head), `| ${width.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

/** The benchmark itself (in the --driver child): one fresh queue per mode, the table and notes. */
async function drive(count: number, seed: number, log: (l: string) => void): Promise<string> {
  const loadBefore = loadAverage();
  const now = Math.floor(Date.now() / 1000);
  const results: ModeResult[] = [];
  let summary: MixedQueueSummary | undefined;
  for (const mode of ["live", "stopped", "stopped-no-quarantine", "qmhandle"] as const) {
    log(`purge bench: ${mode}`);
    const p = await prepare(count, seed, now, log);
    summary = p.summary;
    const cleanups: StandIn[] = [p.qs];
    try {
      if (mode === "qmhandle") {
        const { result, restarted } = await qmHandleMode(p);
        cleanups.push(restarted);
        results.push(result);
      } else if (mode === "stopped-no-quarantine") {
        results.push(await qmfleetMode(p, "stopped", false));
      } else {
        results.push(await qmfleetMode(p, mode, true));
      }
      log(`  done: ${JSON.stringify(results.at(-1))}`);
    } finally {
      for (const qs of cleanups) await qs.dispose();
      fs.rmSync(p.work, { recursive: true, force: true });
    }
  }
  const s = summary as MixedQueueSummary;
  const notes = results.flatMap((r) => [`- ${r.mode}:`, ...r.notes.map((n) => `  - ${n}`)]);
  return [
    `${count} messages (seed ${seed}, split ${SPLIT}, ${(s.bytes / 2 ** 20).toFixed(0)} MB): ${s.storm} in the bounce storm ` +
      `(<> to support@abcde.net); the filter is the Subject "${SUBJECT}", as \`qmHandle -S'${SUBJECT}'\`, which also ` +
      `catches the queue's local double bounces. Each mode on a fresh copy of that queue (same seed, same clock), ` +
      `page cache warm, qmail-send stand-in running (all deliveries defer, concurrency 10/20), quarantine on unless said.`,
    `load average at start of the purge benchmark: ${loadBefore}`,
    "",
    table(results),
    "",
    ...notes,
    "",
    `load average at end of the purge benchmark: ${loadAverage()}`,
    "",
  ].join("\n");
}

/** For run.js: the benchmark in a child process of its own (it waits on child processes); returns its section. */
export function purgeBench(args: { sizes: number[]; seed: number }): string {
  // A live purge waits for qmail-send's whole retry pass: the smallest size only.
  const count = Math.min(...args.sizes);
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), "--driver", `--count=${count}`, `--seed=${args.seed}`],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 * 2 ** 20 },
  );
  if (r.status !== 0) throw new Error(`purge benchmark failed (exit ${r.status})`);
  return r.stdout;
}

function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name}: a positive whole number`);
  return value;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const count = option("count", 100_000);
  const seed = option("seed", 1);
  if (process.argv.includes("--driver")) {
    drive(count, seed, (l) => process.stderr.write(`${l}\n`)).then(
      (section) => process.stdout.write(section),
      (error: unknown) => {
        process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
        process.exit(1);
      },
    );
  } else {
    const m = describeMachine();
    process.stdout.write(
      [
        `# qmfleet purge benchmark, ${m.date}`,
        "",
        `machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}`,
        "",
        purgeBench({ sizes: [count], seed }),
      ].join("\n"),
    );
  }
}
