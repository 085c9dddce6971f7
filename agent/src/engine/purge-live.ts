// Live purge: no downtime (qmail-queue.md §7a, verified on a real qmail-send). For each planned
// message that qmail-send has preprocessed: re-verify it, quarantine it, overwrite the first
// byte of every T record with D in place in local/ and remote/ (the very write qmail-send
// does when a delivery succeeds), and remove bounce/<id> so no bounce is sent. The message is
// then NEUTRALIZED: qmail-send never starts another delivery for it. ALRM makes qmail-send pass
// over every message now; finding nothing left to deliver it RETIRES the message through its
// own code path (channel files, info, then qmail-clean removes mess last), logging `end msg`
// and no warning. Retirement is confirmed by watching the mess files disappear.
//
// Messages still in todo/ cannot be marked until qmail-send has preprocessed them: the purge
// pulls lock/trigger (as qmail-queue does) and handles them in a second round as they appear
// in info/. ALRM is sent again, a bounded number of times, when retirement has stalled for an
// interval or new messages were marked (never while qmail-send is visibly retiring: each ALRM
// reschedules every queued message, a burst of delivery attempts); no_flush sends none
// (retirement then waits for each message's own next retry).

import * as fs from "node:fs";
import { messagePaths, queueAccessError, queuePath } from "./layout.js";
import type { PlannedMessage } from "./plan.js";
import { type PurgeRun, quarantineTarget, untouched, verifyTarget } from "./purge-target.js";
import { alarmQmailSend, findQmailSend, pullTrigger } from "./qmail-send.js";
import { lstatQueueFile, WHOLE_FILE_MAX } from "./queue-file.js";
import { paced } from "./scan.js";

export interface LiveOptions {
  /** Send no ALRM: messages retire at their own next retry. */
  noFlush?: boolean;
  /** How long to wait for retirement (and for todo/ messages to be preprocessed). Default 60 s. */
  retireTimeoutMs?: number;
  /** ALRM again when no message has retired for this long. Default 5 s. */
  alarmIntervalMs?: number;
  /** At most this many ALRMs (each one is a retry burst over the whole queue). Default 6. */
  maxAlarms?: number;
  /**
   * How often the mess files are looked at, at the most. Default 200 ms; a look at many takes
   * longer, and the wait after it grows to keep the looking under a tenth of a CPU.
   */
  pollMs?: number;
}

export interface LiveResult {
  /** Neutralized, not yet retired when the wait ended. */
  awaitingRetirement: number;
  alarms: number;
  notes: string[];
}

interface Watched {
  planned: PlannedMessage;
  messAbs: string;
  ino: bigint;
  ctimeNs: bigint;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// The wait between two looks at the awaiting mess files is at least this many times the last
// look's duration. Measured at 33,000 awaiting on the project's VM: one look (an lstat each)
// took ~170 ms, so a fixed 200 ms poll kept ~45% of a core busy beside qmail-send.
const POLL_IDLE_FACTOR = 9;

/** Overwrites the first byte of every T record with D, in place; returns how many. */
function markDone(abs: string): number {
  let fd: number;
  try {
    // No O_CREAT, no O_TRUNC: only existing bytes change, as qmail-send's markdone does.
    fd = fs.openSync(abs, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw queueAccessError("open", abs, error);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${abs} is not a regular file: left alone`);
    if (st.size > WHOLE_FILE_MAX) throw queueAccessError("read", abs, { code: "EFBIG" });
    const data = fs.readFileSync(fd);
    const d = Buffer.from("D");
    let marked = 0;
    for (let start = 0; start < data.length; ) {
      if (data[start] === 0x54) {
        fs.writeSync(fd, d, 0, 1, start);
        marked++;
      }
      const nul = data.indexOf(0, start);
      if (nul < 0) break;
      start = nul + 1;
    }
    // No fsync, as qmail-send's own markdone(): qmail-send reads the page cache, and only a
    // power loss could undo a mark (the message would then be delivered, not lost).
    return marked;
  } finally {
    fs.closeSync(fd);
  }
}

export async function purgeLive(
  run: PurgeRun,
  messages: Iterable<PlannedMessage>,
  opts: LiveOptions = {},
): Promise<LiveResult> {
  const { layout } = run;
  const retireTimeoutMs = opts.retireTimeoutMs ?? 60_000;
  const alarmIntervalMs = opts.alarmIntervalMs ?? 5_000;
  const maxAlarms = opts.maxAlarms ?? 6;
  const pollMs = opts.pollMs ?? 200;
  const notes: string[] = [];
  let awaiting: Watched[] = [];
  let todo: PlannedMessage[] = [];

  /** Neutralizes one message; "todo" when qmail-send has not preprocessed it yet. */
  const neutralize = async (planned: PlannedMessage): Promise<"todo" | undefined> => {
    let verdict: ReturnType<typeof verifyTarget>;
    try {
      verdict = verifyTarget(layout, planned);
    } catch (error) {
      const failure = { id: planned.id, fingerprint: planned.fingerprint, touched: [] };
      await run.emit({ ...failure, outcome: "failed", error: (error as Error).message });
      return undefined;
    }
    if (verdict.kind !== "ok") {
      await run.emit(untouched(planned, verdict));
      return undefined;
    }
    const t = verdict.target;
    const touched: string[] = [];
    let quarantineId: string | undefined;
    const base = { id: planned.id, fingerprint: planned.fingerprint, touched };
    try {
      if (!lstatQueueFile(t.abs(t.paths.info))) {
        if (lstatQueueFile(t.abs(t.paths.todo))) return "todo";
        await run.emit({
          ...base,
          outcome: "gone",
          error: "qmail-send was retiring it (info/ already removed)",
        });
        return undefined;
      }
      const { odd } = t.presentFiles(["info", "local", "remote", "bounce"] as const);
      if (odd) {
        await run.emit({ ...base, outcome: "failed", error: odd });
        return undefined;
      }
      if (!t.stillQueued()) {
        await run.emit({
          ...base,
          outcome: "gone",
          error: "qmail-send retired it (delivered) since the preview",
        });
        return undefined;
      }
      if (run.quarantine) {
        quarantineId = quarantineTarget(run.quarantine, t, run.routing, {
          planId: run.planId,
          reason: run.reason,
          queueRoot: layout.root,
        });
      }
      for (const channel of ["local", "remote"] as const) {
        if (markDone(t.abs(t.paths[channel])) > 0) touched.push(t.paths[channel]);
      }
      const bounce = lstatQueueFile(t.abs(t.paths.bounce));
      if (bounce) {
        try {
          fs.unlinkSync(t.abs(t.paths.bounce));
          touched.push(t.paths.bounce);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
            throw queueAccessError("remove", t.abs(t.paths.bounce), error);
          }
        }
      }
      const st = fs.fstatSync(t.fd, { bigint: true });
      awaiting.push({ planned, messAbs: t.abs(t.paths.mess), ino: st.ino, ctimeNs: st.ctimeNs });
      await run.emit({ ...base, outcome: "neutralized", ...(quarantineId ? { quarantineId } : {}) });
    } catch (error) {
      await run.emit({
        ...base,
        outcome: "failed",
        error: (error as Error).message,
        ...(quarantineId ? { quarantineId } : {}),
      });
    } finally {
      t.close();
    }
    return undefined;
  };

  for (const planned of messages) {
    if ((await neutralize(planned)) === "todo") todo.push(planned);
  }

  const running = findQmailSend(layout.root) !== undefined;
  if (todo.length > 0 && running) {
    pullTrigger(layout.root);
  } else if (todo.length > 0) {
    for (const planned of todo) {
      await run.emit({
        id: planned.id,
        fingerprint: planned.fingerprint,
        outcome: "failed",
        error: "still in todo/ (not preprocessed) and qmail-send is not running: purge it in stopped mode",
        touched: [],
      });
    }
    todo = [];
  }
  if (!running) notes.push("qmail-send is not running: neutralized messages retire when it starts");
  if (opts.noFlush) notes.push("no ALRM (no_flush): neutralized messages retire at their own next retry");

  let alarms = 0;
  let lastAlarm = 0;
  let lastRetired = 0;
  const alarm = () => {
    if (opts.noFlush || alarms >= maxAlarms) return;
    if (alarmQmailSend(layout.root) !== undefined) alarms++;
    lastAlarm = Date.now();
  };
  if (awaiting.length > 0) alarm();

  const deadline = Date.now() + retireTimeoutMs;
  let wait = pollMs;
  while ((awaiting.length > 0 || todo.length > 0) && Date.now() < deadline) {
    await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
    const lookStart = Date.now();
    const stillTodo: PlannedMessage[] = [];
    for (const planned of todo) {
      if (lstatQueueFile(queuePath(layout, messagePaths(layout, planned.id).info))) {
        if ((await neutralize(planned)) === "todo") stillTodo.push(planned);
      } else {
        stillTodo.push(planned);
      }
    }
    const newlyNeutralized = todo.length - stillTodo.length;
    todo = stillTodo;
    const still: Watched[] = [];
    for await (const w of paced(awaiting)) {
      const st = lstatQueueFile(w.messAbs);
      // Gone, or the name now holds another file: qmail-clean has removed it.
      if (!st || st.ino !== w.ino || st.ctimeNs !== w.ctimeNs) {
        lastRetired = Date.now();
        await run.emit({
          id: w.planned.id,
          fingerprint: w.planned.fingerprint,
          outcome: "retired",
          touched: [],
        });
      } else {
        still.push(w);
      }
    }
    awaiting = still;
    wait = Math.max(pollMs, POLL_IDLE_FACTOR * (Date.now() - lookStart));
    const stalled = Date.now() - Math.max(lastAlarm, lastRetired) >= alarmIntervalMs;
    if (awaiting.length > 0 && (newlyNeutralized > 0 || stalled)) alarm();
  }
  for (const planned of todo) {
    await run.emit({
      id: planned.id,
      fingerprint: planned.fingerprint,
      outcome: "failed",
      error: `qmail-send did not preprocess it (still in todo/) within ${retireTimeoutMs} ms: run the purge again, or in stopped mode`,
      touched: [],
    });
  }
  if (alarms > 0)
    notes.push(`${alarms} ALRM sent to qmail-send: every queued message was retried, not only these`);
  if (awaiting.length > 0)
    notes.push(
      `${awaiting.length} neutralized but not yet retired: qmail-send will not deliver them, and removes them when its pass over the queue reaches them (minutes on a big queue)`,
    );
  return { awaitingRetirement: awaiting.length, alarms, notes };
}
