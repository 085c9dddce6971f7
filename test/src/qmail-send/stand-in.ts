// A stand-in for qmail-send, run as a real process by tests (see control.ts). It follows
// qmail-send.c of netqmail/notqmail for everything that touches the queue, in the same order,
// with the same log lines (shared/docs/qmail-queue.md §4, §7, §10):
// - it holds an exclusive lock on lock/sendmutex for its whole life (started through a perl
//   wrapper that flock()s and then exec()s node, so the lock holder's pid is this process's);
// - preprocesses todo/ at start, when lock/trigger is pulled, and every todoIntervalMs;
// - keeps its schedule in memory (priority queues per channel, jobs, passes, deliveries), reads
//   each channel file record by record when a delivery slot is free, marks records D in place;
// - retires a message when a pass finds no T left: channel file, then bounce, info, mess last;
// - ALRM: every queued message is due now; TERM: no new deliveries, exit once those in progress end.
// Deliveries are not real: a per-recipient rule decides success, deferral, failure, or a
// delivery that hangs in a real child process named qmail-remote (or qmail-local).
//
// Usage: qmail-send --config <file.json>. When started without holding the lock (for example
// when the agent re-runs its command line), it acts as qmail-start does: it starts the locked
// qmail-send in a new session and exits.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { type PqElt, Prioq } from "./prioq.js";
import { lockHolders } from "./proc-locks.js";
import { type DeliveryAction, PERL_LOCK, type StandInConfig } from "./stand-in-options.js";

type Chan = 0 | 1;
const CHANNELS: Chan[] = [0, 1];
const CHANADDR = ["local", "remote"] as const;
const CHANSKIP: [number, number] = [10, 20];

interface Job {
  refs: number;
  id: string;
  channel: Chan;
  retry: number;
  sender: string;
  numtodo: number;
  flaghiteof: boolean;
  flagdying: boolean;
}

interface Pass {
  id: string;
  job: Job;
  data: Buffer;
  pos: number;
}

interface Delivery {
  delid: number;
  job: Job;
  mpos: number;
  recip: string;
}

function configFromArgs(): StandInConfig {
  const at = process.argv.indexOf("--config");
  const file = at >= 0 ? process.argv[at + 1] : undefined;
  if (!file) {
    process.stderr.write("usage: qmail-send --config <file.json>\n");
    process.exit(100);
  }
  return JSON.parse(fs.readFileSync(file, "utf8")) as StandInConfig;
}

const cfg = configFromArgs();
const root = cfg.root;
const home = path.dirname(root);
const sendmutex = path.join(root, "lock", "sendmutex");

function log(line: string): void {
  fs.appendFileSync(cfg.logFile, `${line}\n`);
}

// qsutil.c logsafe: what cannot be printed becomes "_", a newline "/".
function logsafe(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    out += ch === "\n" ? "/" : c < 33 || c > 126 ? "_" : ch;
  }
  return out;
}

if (!lockHolders(sendmutex).includes(process.pid)) {
  relaunchLocked();
} else {
  main();
}

/** qmail-start's part: start the real (locked) qmail-send in its own session, then leave. */
function relaunchLocked(): void {
  const out = fs.openSync(cfg.logFile, "a");
  const child = spawn(
    "perl",
    [
      "-e",
      PERL_LOCK,
      sendmutex,
      path.join(cfg.binDir, "qmail-send"),
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { detached: true, stdio: ["ignore", out, out] },
  );
  child.unref();
  process.exit(0);
}

function main(): void {
  // ------------------------------------------------------------------ CONTROLS
  let locals = new Set<string>();
  let vdoms = new Map<string, string>();
  // getcontrols() at start, regetcontrols() on HUP.
  function readControls(): void {
    locals = new Set((cfg.locals ?? readControlLines("locals")).map((d) => d.toLowerCase()));
    vdoms = new Map();
    for (const line of readControlLines("virtualdomains")) {
      const colon = line.indexOf(":");
      if (colon >= 0) vdoms.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1));
    }
  }
  readControls();
  const concurrency: [number, number] = [cfg.concurrencyLocal, cfg.concurrencyRemote];
  const numjobs = concurrency[0] + concurrency[1];
  const bigTodo = isDir(path.join(root, "todo", "0"));
  const split = fs.readdirSync(path.join(root, "mess")).filter((n) => /^\d+$/.test(n)).length;

  function readControlLines(name: string): string[] {
    try {
      return fs
        .readFileSync(path.join(home, "control", name), "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"));
    } catch {
      return [];
    }
  }

  // ----------------------------------------------------------------- FILENAMES
  const fmtqfn = (dir: string, id: string, splitted: boolean): string =>
    splitted ? `${dir}/${BigInt(id) % BigInt(split)}/${id}` : `${dir}/${id}`;
  const fnInfo = (id: string) => fmtqfn("info", id, true);
  const fnMess = (id: string) => fmtqfn("mess", id, true);
  const fnTodo = (id: string) => fmtqfn("todo", id, bigTodo);
  const fnIntd = (id: string) => fmtqfn("intd", id, bigTodo);
  const fnBounce = (id: string) => fmtqfn("bounce", id, false);
  const fnChan = (id: string, c: Chan) => fmtqfn(CHANADDR[c], id, true);
  const abs = (rel: string) => path.join(root, rel);

  let recent = Date.now();
  let flagexitasap = false;
  let flagrunasap = false;

  // ------------------------------------------------------------------- REWRITE
  /** qmail-send.c rewrite(): [channel, stored address]. */
  function rewrite(recip: string): [Chan, string] {
    let addr = recip;
    if (!addr.includes("@")) addr += "@envnoathost";
    const at = addr.lastIndexOf("@");
    if (locals.has(addr.slice(at + 1).toLowerCase())) return [0, addr];
    for (let i = 0; i <= addr.length; i++) {
      if (i === 0 || i === at + 1 || i === addr.length || (i > at && addr[i] === ".")) {
        const prefix = vdoms.get(addr.slice(i).toLowerCase());
        if (prefix === undefined) continue;
        if (prefix === "") break;
        return [0, `${prefix}-${addr}`];
      }
    }
    return [1, addr];
  }

  function stripvdomprepend(recip: string): string {
    const at = recip.lastIndexOf("@");
    if (at < 0) return recip;
    const domain = recip.slice(at + 1);
    for (let i = 0; i <= domain.length; i++) {
      if (i === 0 || i === domain.length || domain[i] === ".") {
        const prefix = vdoms.get(domain.slice(i).toLowerCase());
        if (prefix === undefined) continue;
        if (prefix === "" || !recip.startsWith(`${prefix}-`)) break;
        return recip.slice(prefix.length + 1);
      }
    }
    return recip;
  }

  // ---------------------------------------------------------------------- INFO
  function getinfo(id: string): { sender: string; birth: number } | undefined {
    try {
      const data = fs.readFileSync(abs(fnInfo(id)));
      const birth = Math.floor(fs.statSync(abs(fnInfo(id))).mtimeMs / 1000);
      const nul = data.indexOf(0);
      if (nul < 0 || data[0] !== 0x46) return undefined;
      return { sender: data.subarray(1, nul).toString("latin1"), birth };
    } catch {
      return undefined;
    }
  }

  // ----------------------------------------------------------- PRIORITY QUEUES
  const pqdone = new Prioq();
  const pqchan: [Prioq, Prioq] = [new Prioq(), new Prioq()];
  const pqfail = new Prioq();

  const statOk = (rel: string): boolean | "error" => {
    try {
      fs.statSync(abs(rel));
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ENOENT" ? false : "error";
    }
  };

  function pqadd(id: string): void {
    let fn = fnInfo(id);
    const fail = () => {
      log(`warning: unable to stat ${fn}; will try again later`);
      pqfail.insert({ id, dt: Date.now() + cfg.sysfailMs });
    };
    const info = statOk(fn);
    if (info === "error") {
      fail();
      return;
    }
    if (!info) return; // someone yanking our chain
    fn = fnTodo(id);
    const todo = statOk(fn);
    if (todo === "error") {
      fail();
      return;
    }
    if (todo) return; // look, ma, dad crashed writing info!
    const entries: Array<[Chan, number]> = [];
    for (const c of CHANNELS) {
      fn = fnChan(id, c);
      try {
        entries.push([c, fs.statSync(abs(fn)).mtimeMs]);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
          fail();
          return;
        }
      }
    }
    for (const [c, dt] of entries) pqchan[c].insert({ id, dt });
    if (entries.length === 0) pqdone.insert({ id, dt: Date.now() });
  }

  function pqstart(): void {
    for (let n = 0; n < split; n++) {
      let names: string[];
      try {
        names = fs.readdirSync(abs(`info/${n}`));
      } catch {
        continue;
      }
      for (const name of names) if (/^\d+$/.test(name)) pqadd(name);
    }
  }

  /** On exit, the schedule survives in the channel files' times (pqfinish). */
  function pqfinish(): void {
    for (const c of CHANNELS) {
      for (const pe of pqchan[c]) {
        const t = new Date(pe.dt);
        try {
          fs.utimesSync(abs(fnChan(pe.id, c)), t, t);
        } catch {
          log(`warning: unable to utime ${fnChan(pe.id, c)}; message will be retried too soon`);
        }
      }
    }
  }

  function pqrun(): void {
    for (const c of CHANNELS) pqchan[c].setAll(recent);
  }

  // ---------------------------------------------------------------------- JOBS
  const jobs = new Set<Job>();

  function jobClose(j: Job): void {
    if (--j.refs > 0) return;
    jobs.delete(j);
    const pe: PqElt = { id: j.id, dt: j.retry };
    if (j.flaghiteof && j.numtodo === 0) {
      const fn = fnChan(j.id, j.channel);
      try {
        fs.unlinkSync(abs(fn));
      } catch {
        log(`warning: unable to unlink ${fn}; will try again later`);
        pe.dt = Date.now() + cfg.sysfailMs;
        pqchan[j.channel].insert(pe);
        return;
      }
      for (const c of CHANNELS) {
        if (c === j.channel) continue;
        const other = statOk(fnChan(j.id, c));
        if (other === true) return; // more channels going
        if (other === "error") {
          log(`warning: unable to stat ${fnChan(j.id, c)}`);
          break;
        }
      }
      pqdone.insert({ id: j.id, dt: Date.now() });
      return;
    }
    pqchan[j.channel].insert(pe);
  }

  // ------------------------------------------------------------------- BOUNCES
  function addbounce(id: string, recip: string, report: string): void {
    let text = `<${stripvdomprepend(recip).replace(/\n/g, "_")}>:\n${report}`;
    if (report !== "" && !report.endsWith("\n")) text += "\n";
    const chars = [...text];
    for (let pos = chars.length - 2; pos > 0; pos--) {
      if (chars[pos] === "\n" && chars[pos - 1] === "\n") chars[pos] = "/";
    }
    fs.appendFileSync(abs(fnBounce(id)), `${chars.join("")}\n`);
  }

  /** The bounce itself is not written into the queue (simplified): it is logged and its report dropped. */
  function injectbounce(id: string): boolean {
    const info = getinfo(id);
    if (!info) return false;
    const fn = fnBounce(id);
    const st = statOk(fn);
    if (st === "error") {
      log(`warning: unable to stat ${fn}`);
      return false;
    }
    if (!st) return true;
    if (info.sender === "#@[]") log(`triple bounce: discarding ${fn}`);
    else log(`bounce msg ${id} qp ${process.pid}`);
    try {
      fs.unlinkSync(abs(fn));
    } catch {
      log(`warning: unable to unlink ${fn}`);
      return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- DELIVERIES
  let masterdelid = 1;
  const slots: [Array<Delivery | undefined>, Array<Delivery | undefined>] = [
    new Array<Delivery | undefined>(concurrency[0]).fill(undefined),
    new Array<Delivery | undefined>(concurrency[1]).fill(undefined),
  ];
  const used = (c: Chan) => slots[c].filter((d) => d !== undefined).length;

  function delStatus(): void {
    log(
      `status: local ${used(0)}/${concurrency[0]} remote ${used(1)}/${concurrency[1]}${flagexitasap ? " exitasap" : ""}`,
    );
  }
  const delCanexit = () => used(0) === 0 && used(1) === 0;
  const delAvail = (c: Chan) => used(c) < concurrency[c];

  function actionFor(c: Chan, recip: string): DeliveryAction {
    for (const rule of cfg.rules) {
      if (rule.channel !== undefined && rule.channel !== CHANADDR[c]) continue;
      if (new RegExp(rule.match, "i").test(recip)) return rule.action;
    }
    return cfg.defaultAction;
  }

  function delStart(j: Job, mpos: number, recip: string): void {
    const c = j.channel;
    const i = slots[c].indexOf(undefined);
    if (i < 0) return;
    const d: Delivery = { delid: masterdelid++, job: j, mpos, recip };
    slots[c][i] = d;
    ++j.refs;
    log(`starting delivery ${d.delid}: msg ${j.id} to ${CHANADDR[c]} ${logsafe(recip)}`);
    delStatus();
    const action = actionFor(c, recip);
    const prog = c === 0 ? "qmail-local" : "qmail-remote";
    switch (action) {
      case "succeed":
        setImmediate(() =>
          report(
            c,
            d,
            "K",
            c === 0 ? "did 1+0+0\n" : "192.0.2.1 accepted message.\nRemote host said: 250 ok\n",
          ),
        );
        break;
      case "defer":
        setImmediate(() =>
          report(
            c,
            d,
            "Z",
            c === 0
              ? "Unable to write to the mailbox. (#4.2.1)\n"
              : "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
          ),
        );
        break;
      case "fail":
        setImmediate(() => report(c, d, "D", "Sorry, no mailbox here by that name. (#5.1.1)\n"));
        break;
      case "hang": {
        // qmail-send -> qmail-rspawn -> qmail-remote, as on a real host: the agent's escalation
        // walks this tree to find the deliveries to TERM.
        const child = spawn(
          path.join(cfg.binDir, "qmail-rspawn"),
          ["-c", '"$0" "$1" & wait $!', path.join(cfg.binDir, prog), String(cfg.hangSeconds)],
          { stdio: "ignore" },
        );
        child.on("error", () => report(c, d, "Z", `${prog} crashed.\n`));
        child.on("exit", (code) =>
          report(
            c,
            d,
            "Z",
            code === 0 ? "Connected to 192.0.2.1 but connection died. (#4.4.2)\n" : `${prog} crashed.\n`,
          ),
        );
        break;
      }
    }
  }

  function markdone(c: Chan, id: string, pos: number): void {
    const fn = fnChan(id, c);
    try {
      const fd = fs.openSync(abs(fn), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      try {
        fs.writeSync(fd, "D", pos);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      log(`warning: trouble marking ${fn}; message will be delivered twice!`);
    }
  }

  function report(c: Chan, d: Delivery, kind: "K" | "Z" | "D", text: string): void {
    // A child can report twice ("error" then "exit"); the slot may be someone else's by then.
    const i = slots[c].indexOf(d);
    if (i < 0) return;
    let k = kind;
    let t = text;
    if (k === "Z" && d.job.flagdying) {
      k = "D";
      t += "I'm not going to try again; this message has been in the queue too long.\n";
    }
    switch (k) {
      case "K":
        log(`delivery ${d.delid}: success: ${logsafe(t)}`);
        markdone(c, d.job.id, d.mpos);
        --d.job.numtodo;
        break;
      case "Z":
        log(`delivery ${d.delid}: deferral: ${logsafe(t)}`);
        break;
      case "D":
        log(`delivery ${d.delid}: failure: ${logsafe(t)}`);
        addbounce(d.job.id, d.recip, t);
        markdone(c, d.job.id, d.mpos);
        --d.job.numtodo;
        break;
    }
    jobClose(d.job);
    slots[c][i] = undefined;
    delStatus();
    kick();
  }

  // -------------------------------------------------------------------- PASSES
  const pass: [Pass | undefined, Pass | undefined] = [undefined, undefined];

  function nextretry(birth: number, c: Chan): number {
    const r = Math.floor(recent / 1000);
    const n = (birth > r ? 0 : Math.floor(Math.sqrt(r - birth))) + CHANSKIP[c];
    return (birth + n * n) * 1000;
  }

  /** One step of a channel's pass; true when it did something. */
  function passDochan(c: Chan): boolean {
    if (flagexitasap) return false;
    let p = pass[c];
    if (!p) {
      if (jobs.size >= numjobs) return false;
      const pe = pqchan[c].min();
      if (!pe || pe.dt > recent) return false;
      pqchan[c].delmin();
      let fn = fnChan(pe.id, c);
      let data: Buffer;
      const trouble = () => {
        log(`warning: trouble opening ${fn}; will try again later`);
        pqchan[c].insert({ id: pe.id, dt: recent + cfg.sysfailMs });
        return true;
      };
      try {
        data = fs.readFileSync(abs(fn));
      } catch {
        return trouble();
      }
      const info = getinfo(pe.id);
      // getinfo() reuses qmail-send's file name buffer: the warning then names info/.
      fn = fnInfo(pe.id);
      if (!info) return trouble();
      const job: Job = {
        refs: 1,
        id: pe.id,
        channel: c,
        retry: nextretry(info.birth, c),
        sender: info.sender,
        numtodo: 0,
        flaghiteof: false,
        flagdying: recent > (info.birth + cfg.lifetimeSeconds) * 1000,
      };
      jobs.add(job);
      p = { id: pe.id, job, data, pos: 0 };
      pass[c] = p;
    }
    if (!delAvail(c)) return false;
    const nul = p.data.indexOf(0, p.pos);
    if (nul < 0) {
      p.job.flaghiteof = true;
      jobClose(p.job);
      pass[c] = undefined;
      return true;
    }
    const rec = p.data.subarray(p.pos, nul);
    switch (rec[0]) {
      case 0x54: // T
        ++p.job.numtodo;
        delStart(p.job, p.pos, rec.subarray(1).toString("latin1"));
        break;
      case 0x44: // D
        break;
      default:
        log(`warning: unknown record type in ${fnChan(p.id, c)}!`);
        jobClose(p.job);
        pass[c] = undefined;
        return true;
    }
    p.pos = nul + 1;
    return true;
  }

  function messdone(id: string): void {
    const fail = () => {
      pqdone.insert({ id, dt: Date.now() + cfg.sysfailMs });
    };
    for (const c of CHANNELS) {
      const st = statOk(fnChan(id, c));
      if (st === true) return; // false alarm
      if (st === "error") {
        log(`warning: unable to stat ${fnChan(id, c)}; will try again later`);
        fail();
        return;
      }
    }
    const todo = statOk(fnTodo(id));
    if (todo === true) return;
    if (todo === "error") {
      log(`warning: unable to stat ${fnTodo(id)}; will try again later`);
      fail();
      return;
    }
    const info = statOk(fnInfo(id));
    if (info === false) return;
    if (info === "error") {
      log(`warning: unable to stat ${fnInfo(id)}; will try again later`);
      fail();
      return;
    }
    if (!injectbounce(id)) {
      fail();
      return;
    }
    log(`end msg ${id}`);
    try {
      fs.unlinkSync(abs(fnInfo(id)));
    } catch {
      log(`warning: unable to unlink ${fnInfo(id)}; will try again later`);
      fail();
      return;
    }
    // qmail-clean: intd, then mess - last.
    if (!cleanUnlink([fnIntd(id), fnMess(id)])) log(`warning: qmail-clean unable to clean up foop/${id}`);
  }

  function cleanUnlink(files: string[]): boolean {
    for (const fn of files) {
      try {
        fs.unlinkSync(abs(fn));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") return false;
      }
    }
    return true;
  }

  function passDo(): boolean {
    let did = false;
    for (const c of CHANNELS) if (passDochan(c)) did = true;
    const failed = pqfail.min();
    if (failed && failed.dt <= recent) {
      pqfail.delmin();
      pqadd(failed.id);
      did = true;
    }
    const done = pqdone.min();
    if (done && done.dt <= recent) {
      pqdone.delmin();
      messdone(done.id);
      did = true;
    }
    return did;
  }

  // ---------------------------------------------------------------------- TODO
  let nexttodorun = Date.now();
  let triggered = false;

  function todoDo(): boolean {
    if (flagexitasap) return false;
    if (!triggered && recent < nexttodorun) return false;
    triggered = false;
    nexttodorun = recent + cfg.todoIntervalMs;
    const dirs = bigTodo ? Array.from({ length: split }, (_, n) => `todo/${n}`) : ["todo"];
    for (const dir of dirs) {
      let names: string[];
      try {
        names = fs.readdirSync(abs(dir));
      } catch {
        continue;
      }
      for (const name of names) if (/^\d+$/.test(name)) preprocess(name);
    }
    return true;
  }

  function preprocess(id: string): void {
    let envelope: Buffer;
    try {
      envelope = fs.readFileSync(abs(fnTodo(id)));
    } catch {
      log(`warning: unable to open ${fnTodo(id)}`);
      return;
    }
    let size: number;
    try {
      size = fs.statSync(abs(fnMess(id))).size;
    } catch {
      log(`warning: unable to stat ${fnMess(id)}`);
      return;
    }
    for (const fn of [fnChan(id, 0), fnChan(id, 1), fnInfo(id)]) {
      try {
        fs.unlinkSync(abs(fn));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
          log(`warning: unable to unlink ${fn}`);
          return;
        }
      }
    }
    const fds: Array<number | undefined> = [undefined, undefined];
    let fdinfo: number;
    try {
      fdinfo = fs.openSync(abs(fnInfo(id)), "wx", 0o600);
    } catch {
      log(`warning: unable to create ${fnInfo(id)}`);
      return;
    }
    try {
      log(`new msg ${id}`);
      let uid = "0";
      let pid = "0";
      let start = 0;
      for (let nul = envelope.indexOf(0); nul >= 0; start = nul + 1, nul = envelope.indexOf(0, start)) {
        const rec = envelope.subarray(start, nul + 1);
        const body = rec.subarray(1, rec.length - 1).toString("latin1");
        switch (String.fromCharCode(rec[0] ?? 0)) {
          case "u":
            uid = body;
            break;
          case "p":
            pid = body;
            break;
          case "F":
            fs.writeSync(fdinfo, rec);
            log(`info msg ${id}: bytes ${size} from <${logsafe(body)}> qp ${pid} uid ${uid}`);
            break;
          case "T": {
            const [c, stored] = rewrite(body);
            let fd = fds[c];
            if (fd === undefined) {
              try {
                fd = fs.openSync(abs(fnChan(id, c)), "wx", 0o600);
              } catch {
                log(`warning: unable to create ${fnChan(id, c)}`);
                return;
              }
              fds[c] = fd;
            }
            fs.writeSync(fd, Buffer.from(`T${stored}\0`, "latin1"));
            break;
          }
          default:
            log(`warning: unknown record type in ${fnTodo(id)}`);
            return;
        }
      }
      fs.fsyncSync(fdinfo);
      for (const fd of fds) if (fd !== undefined) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fdinfo);
      for (const fd of fds) if (fd !== undefined) fs.closeSync(fd);
    }
    // qmail-clean's "todo/" request: intd, then todo.
    if (!cleanUnlink([fnIntd(id), fnTodo(id)])) {
      log(`warning: qmail-clean unable to clean up ${fnTodo(id)}`);
      return;
    }
    const now = Date.now();
    let any = false;
    for (const c of CHANNELS) {
      if (fds[c] === undefined) continue;
      pqchan[c].insert({ id, dt: now });
      any = true;
    }
    if (!any) pqdone.insert({ id, dt: now });
  }

  // The wake-up FIFO qmail-queue writes a byte to. Opened read-write so it never reads EOF.
  let trigger: net.Socket | undefined;
  const triggerPath = abs("lock/trigger");
  try {
    if (fs.statSync(triggerPath).isFIFO()) {
      const fd = fs.openSync(triggerPath, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      trigger = new net.Socket({ fd, readable: true, writable: false });
      trigger.on("error", () => log("warning: trouble reading lock/trigger"));
      trigger.on("data", () => {
        triggered = true;
        kick();
      });
    }
  } catch {
    // no trigger: todo/ is scanned on the timer only
  }

  // ---------------------------------------------------------------------- MAIN
  let timer: NodeJS.Timeout | undefined;
  let kicked = false;

  function kick(): void {
    if (kicked) return;
    kicked = true;
    setImmediate(loop);
  }

  let ready = false;
  function loop(): void {
    kicked = false;
    if (timer) clearTimeout(timer);
    recent = Date.now();
    if (flagrunasap) {
      flagrunasap = false;
      pqrun();
    }
    for (;;) {
      const did = [todoDo(), passDo()].some(Boolean);
      recent = Date.now();
      if (!did) break;
    }
    if (flagexitasap && delCanexit()) {
      pqfinish();
      log("status: exiting");
      trigger?.destroy();
      process.exit(0);
    }
    let wakeup = recent + 86_400_000;
    const consider = (pe: PqElt | undefined) => {
      if (pe && pe.dt < wakeup) wakeup = pe.dt;
    };
    if (!flagexitasap) {
      for (const c of CHANNELS) if (!pass[c] && jobs.size < numjobs) consider(pqchan[c].min());
      if (nexttodorun < wakeup) wakeup = nexttodorun;
    }
    consider(pqfail.min());
    consider(pqdone.min());
    timer = setTimeout(loop, Math.max(0, wakeup - Date.now()) + 5);
    if (!ready) {
      ready = true;
      fs.writeFileSync(cfg.readyFile, "");
    }
  }

  process.on("SIGTERM", () => {
    if (cfg.ignoreTerm) return;
    flagexitasap = true;
    // Not in qmail-send, which says "exitasap" only on its next status line: this one lets a
    // test see that the TERM arrived while a delivery keeps it running.
    delStatus();
    kick();
  });
  process.on("SIGALRM", () => {
    if (cfg.ignoreAlarm) return;
    flagrunasap = true;
    kick();
  });
  process.on("SIGHUP", readControls);

  pqstart();
  delStatus();
  kick();
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
