// Walks every message of a queue, one at a time, reading only what a listing needs: the
// envelope files and the head of each mess file (never the whole message), so memory stays
// bounded whatever the queue size and a 50 MB message costs what a 2 KB one does.
//
// Order is qmail-qread's: info/0 .. info/<split-1> in readdir order (preprocessed messages),
// then todo/ (committed, not yet preprocessed), then intd/ entries without todo (being written).
//
// Cost: a message is ~10 syscalls (mess: open, read, close; info: open, fstat, read, close;
// remote and/or local: open, read, close), and on the project's VM a syscall costs 2-8 us, so
// syscalls are most of a scan. Synchronous fs calls are 5-6x cheaper than fs/promises for many
// small files (toolchain.md), so the walk is a synchronous generator; scanQueue gives the event
// loop a turn every few milliseconds and, for a full scan of a big queue, splits the split
// dirs between two worker threads. Per split dir, one listing of local/N and remote/N replaces a
// failing open per absent channel file (a thrown ENOENT costs ~10 us in node), and one listing
// of bounce/ replaces a stat per message. The mess head is read first, so a prefilter on raw
// headers skips the envelope reads of messages it rejects (then a search costs what grep does).
// Symlinks are never followed: entries must be regular files and every open uses O_NOFOLLOW.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { loadRouting, parseInfo, parseRecipients, parseTodo, type Routing } from "./envelope.js";
import { FINGERPRINT_SPAN, fingerprintOf, type MessageHead, openNoAtime, readHead } from "./fingerprint.js";
import { cutHeaderBlock, summarizeHeaders } from "./headers.js";
import {
  isMessageName,
  messageFileNames,
  messagePaths,
  qmailHomeOf,
  queueAccessError,
  splitOf,
  todoDirs,
} from "./layout.js";
import type {
  MessageHeaders,
  MessagePaths,
  MessageState,
  QueuedMessage,
  QueueLayout,
  Recipient,
} from "./model.js";

export interface ScanOptions {
  /** Only these ids (qmHandle -mN, purge re-check), in this order; ids not in the queue are skipped. */
  ids?: Iterable<string>;
  /** Decode From/To/Subject... and the client IP (default true). The head is read either way: it gives the fingerprint. */
  headers?: boolean;
  /** Bytes read at first from each mess file; more (up to 64 KiB) only when the header block is longer. */
  headBytes?: number;
  /** Default: control/virtualdomains, control/locals beside the queue. */
  routing?: Routing;
  /**
   * Called with each raw header block before anything else is read: false skips the message
   * without opening its envelope files. For raw header searches (qmHandle -h/-H, -S on the
   * raw subject): the filter still runs on the full candidate afterwards.
   */
  prefilter?: (headBlock: Buffer) => boolean;
  /**
   * scanQueue only: worker threads reading the preprocessed messages (0 = in-thread). Default:
   * 2 for a full scan of a queue of WORKER_THRESHOLD messages or more, on 2 or more cores.
   * Scans by ids, with a prefilter or a custom routing always run in-thread.
   */
  workers?: number;
}

/** One message as a filter sees it: the model, its raw header block, and its body on demand. */
export interface ScanCandidate {
  message: QueuedMessage;
  /** The header lines as in the file, without the blank line (capped at 64 KiB). */
  headBlock: Buffer;
  /** False when no blank line was found within the cap (no body, or headers longer than 64 KiB). */
  headComplete: boolean;
  /** Offset of the body in the mess file (its size when there is no blank line). */
  bodyOffset: number;
  /** Up to maxBytes of the raw message from its first byte. */
  readRaw(maxBytes: number): Buffer;
  /** Up to maxBytes of the body: the bytes after the blank line (empty when there is none). */
  readBody(maxBytes: number): Buffer;
}

export const EMPTY_HEADERS: Readonly<MessageHeaders> = Object.freeze({
  from: "",
  to: "",
  cc: "",
  subject: "",
  subjectRaw: "",
  date: "",
  messageId: "",
});

const DEFAULT_HEAD = 16 * 1024;

// Envelope files are tiny; one reused buffer avoids an allocation per read.
const scratch = Buffer.allocUnsafe(64 * 1024);

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ELOOP";
}

interface SmallFile {
  data: Buffer;
  mtime: number;
}

/**
 * Reads a small queue file (envelope), undefined when it vanished (qmail-send finished the
 * message meanwhile). The data is a copy only when it outgrows the scratch buffer: callers
 * parse it before the next read.
 */
function readSmall(abs: string, wantMtime: boolean): SmallFile | undefined {
  let fd: number;
  try {
    fd = openNoAtime(abs);
  } catch (err) {
    // ENOENT: finished meanwhile; ELOOP: a symlink, never followed.
    if (isAbsent(err)) return undefined;
    throw queueAccessError("read", abs, err);
  }
  try {
    const mtime = wantMtime ? Math.floor(fs.fstatSync(fd).mtimeMs / 1000) : 0;
    const n = fs.readSync(fd, scratch, 0, scratch.length, 0);
    if (n < scratch.length) return { data: scratch.subarray(0, n), mtime };
    // Longer than 64 KiB (thousands of recipients): read the rest too.
    const parts = [Buffer.from(scratch)];
    for (let pos = n; ; ) {
      const chunk = Buffer.allocUnsafe(scratch.length);
      const got = fs.readSync(fd, chunk, 0, chunk.length, pos);
      if (got === 0) break;
      parts.push(chunk.subarray(0, got));
      pos += got;
    }
    return { data: Buffer.concat(parts), mtime };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
    throw queueAccessError("read", abs, err);
  } finally {
    fs.closeSync(fd);
  }
}

function messageNames(root: string, rel: string): string[] {
  return messageFileNames(`${root}/${rel}`);
}

function readMess(abs: string, headBytes: number): MessageHead | undefined {
  let fd: number;
  try {
    fd = openNoAtime(abs);
  } catch (err) {
    // ENOENT: an orphan (check.ts reports it) or delivered meanwhile; ELOOP: a symlink.
    if (isAbsent(err)) return undefined;
    throw queueAccessError("read", abs, err);
  }
  try {
    return readHead(fd, headBytes);
  } catch (err) {
    // EISDIR: a directory where a message should be (an odd entry check.ts reports).
    if ((err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
    throw queueAccessError("read", abs, err);
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(abs: string, offset: number, maxBytes: number): Buffer {
  const fd = openNoAtime(abs);
  try {
    const size = fs.fstatSync(fd).size;
    const want = Math.max(0, Math.min(maxBytes, size - offset));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(fd, buf, got, want - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got === want ? buf : buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

export class Walker {
  private readonly root: string;
  private readonly headBytes: number;
  private readonly decode: boolean;
  private readonly routing: Routing;
  private readonly prefilter: ((headBlock: Buffer) => boolean) | undefined;
  private bouncing: Set<string> | undefined;

  constructor(
    private readonly layout: QueueLayout,
    opts: ScanOptions,
  ) {
    this.root = layout.root;
    this.headBytes = Math.min(opts.headBytes ?? DEFAULT_HEAD, FINGERPRINT_SPAN);
    this.decode = opts.headers ?? true;
    this.routing = opts.routing ?? loadRouting(qmailHomeOf(layout));
    this.prefilter = opts.prefilter;
  }

  private isBouncing(id: string): boolean {
    this.bouncing ??= new Set(messageNames(this.root, "bounce"));
    return this.bouncing.has(id);
  }

  *all(): Generator<ScanCandidate> {
    yield* this.buckets(Array.from({ length: this.layout.split }, (_, n) => n));
    yield* this.pending();
  }

  /** Preprocessed messages of the given split dirs, in that order. */
  *buckets(list: number[]): Generator<ScanCandidate> {
    for (const n of list) {
      const ids = messageNames(this.root, `info/${n}`);
      if (ids.length === 0) continue;
      const local = new Set(messageNames(this.root, `local/${n}`));
      const remote = new Set(messageNames(this.root, `remote/${n}`));
      for (const id of ids) {
        // A file in the wrong split dir is invisible to qmail-send: check.ts reports it.
        if (splitOf(this.layout, id) !== n) continue;
        const c = this.preprocessed(id, local.has(id), remote.has(id));
        if (c) yield c;
      }
    }
  }

  /** Messages not yet preprocessed: todo/, then intd/ without todo. */
  *pending(): Generator<ScanCandidate> {
    const committed = new Set<string>();
    for (const dir of todoDirs(this.layout, "todo")) {
      for (const id of messageNames(this.root, dir)) {
        committed.add(id);
        const c = this.queued(id, "todo");
        if (c) yield c;
      }
    }
    for (const dir of todoDirs(this.layout, "intd")) {
      for (const id of messageNames(this.root, dir)) {
        if (committed.has(id)) continue;
        const c = this.queued(id, "being-written");
        if (c) yield c;
      }
    }
  }

  *some(ids: Iterable<string>): Generator<ScanCandidate> {
    for (const id of ids) {
      if (!isMessageName(id)) continue;
      const p = messagePaths(this.layout, id);
      const c =
        this.preprocessed(id, true, true) ??
        (exists(`${this.root}/${p.todo}`) ? this.queued(id, "todo") : undefined) ??
        this.queued(id, "being-written");
      if (c) yield c;
    }
  }

  private preprocessed(id: string, hasLocal: boolean, hasRemote: boolean): ScanCandidate | undefined {
    return this.candidate(id, (paths) => {
      const info = readSmall(`${this.root}/${paths.info}`, true);
      if (!info) return undefined;
      const { sender } = parseInfo(info.data);
      const recipients: Recipient[] = [];
      if (hasLocal) this.channel(`${this.root}/${paths.local}`, "local", recipients);
      if (hasRemote) this.channel(`${this.root}/${paths.remote}`, "remote", recipients);
      const bouncing = this.isBouncing(id);
      return {
        state: bouncing ? "bouncing" : "preprocessed",
        birthTime: info.mtime,
        sender,
        recipients,
        bouncing,
      };
    });
  }

  private channel(abs: string, channel: "local" | "remote", into: Recipient[]): void {
    const file = readSmall(abs, false);
    if (file) into.push(...parseRecipients(file.data, channel, this.routing.vdoms).recipients);
  }

  private queued(id: string, state: "todo" | "being-written"): ScanCandidate | undefined {
    return this.candidate(id, (paths) => {
      // qmail-send writes info before it unlinks intd and todo: with info there, the message
      // is preprocessed and was listed as such.
      if (exists(`${this.root}/${paths.info}`)) return undefined;
      const file = readSmall(`${this.root}/${state === "todo" ? paths.todo : paths.intd}`, true);
      if (!file) return undefined;
      const todo = parseTodo(file.data);
      const recipients = todo.recipients.map(
        (address): Recipient => ({
          channel: this.routing.channelOf(address),
          address,
          stored: address,
          done: false,
        }),
      );
      return { state, birthTime: file.mtime, sender: todo.sender, recipients, bouncing: false };
    });
  }

  /**
   * The mess head first: when a prefilter rejects it, the envelope files are never opened
   * (3 syscalls per message instead of 10, what makes a header search as cheap as grep).
   */
  private candidate(
    id: string,
    envelopeOf: (paths: MessagePaths) => Envelope | undefined,
  ): ScanCandidate | undefined {
    const paths = messagePaths(this.layout, id);
    const messAbs = `${this.root}/${paths.mess}`;
    const mess = readMess(messAbs, this.headBytes);
    if (!mess) return undefined;
    const cut = cutHeaderBlock(mess.head);
    if (this.prefilter && !this.prefilter(cut.block)) return undefined;
    const envelope = envelopeOf(paths);
    if (!envelope) return undefined;
    const summary = this.decode ? summarizeHeaders(cut.block) : undefined;
    const message: QueuedMessage = {
      id,
      fingerprint: fingerprintOf(mess.size, mess.head),
      ...envelope,
      size: mess.size,
      headers: summary ? summary.headers : { ...EMPTY_HEADERS },
      clientIp: summary ? summary.clientIp : "",
      paths,
    };
    const bodyOffset = cut.complete
      ? cut.block.length + (mess.head[cut.block.length] === 0x0d ? 2 : 1)
      : mess.size;
    return candidateOf(this.root, message, cut.block, cut.complete, bodyOffset);
  }
}

/** A candidate from its parts (also how scan-worker.ts results become candidates again). */
export function candidateOf(
  root: string,
  message: QueuedMessage,
  headBlock: Buffer,
  headComplete: boolean,
  bodyOffset: number,
): ScanCandidate {
  const messAbs = `${root}/${message.paths.mess}`;
  return {
    message,
    headBlock,
    headComplete,
    bodyOffset,
    readRaw: (maxBytes) => readAt(messAbs, 0, maxBytes),
    readBody: (maxBytes) => readAt(messAbs, bodyOffset, maxBytes),
  };
}

interface Envelope {
  state: MessageState;
  birthTime: number;
  sender: string;
  recipients: Recipient[];
  bouncing: boolean;
}

function exists(abs: string): boolean {
  return fs.lstatSync(abs, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** Every message (or opts.ids), synchronously: for batch tools and benchmarks. */
export function* scanQueueSync(layout: QueueLayout, opts: ScanOptions = {}): Generator<ScanCandidate> {
  const walker = new Walker(layout, opts);
  yield* opts.ids ? walker.some(opts.ids) : walker.all();
}

// The agent serves other calls while it scans: give the event loop a turn this often.
const SLICE_MS = 8;

/** Gives the event loop a turn when the current slice of synchronous work is over. */
class Pacer {
  private sliceStart = performance.now();
  private count = 0;

  async tick(): Promise<void> {
    // performance.now() costs ~50 ns: look at the clock every 64 items only.
    if ((++this.count & 63) === 0 && performance.now() - this.sliceStart > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.sliceStart = performance.now();
    }
  }
}

/** Runs a synchronous walk as an async one, yielding to the event loop between ~8 ms slices. */
export async function* paced<T>(items: Iterable<T>): AsyncGenerator<T> {
  const pacer = new Pacer();
  for (const item of items) {
    yield item;
    await pacer.tick();
  }
}

/** What scan-worker.ts posts: the candidates of one split dir, a batch at a time. */
export interface WorkerBatch {
  bucket: number;
  items: Array<{ message: QueuedMessage; headBlock: Uint8Array; headComplete: boolean; bodyOffset: number }>;
  /** The bucket is finished. */
  last: boolean;
}

export interface WorkerJob {
  layout: QueueLayout;
  buckets: number[];
  headers: boolean;
  headBytes: number | undefined;
}

/** Queues smaller than this are scanned in-thread: starting workers costs more than it saves. */
export const WORKER_THRESHOLD = 20_000;

function workersFor(layout: QueueLayout, opts: ScanOptions): number {
  if (opts.workers !== undefined) return opts.ids || opts.prefilter || opts.routing ? 0 : opts.workers;
  if (opts.ids || opts.prefilter || opts.routing || layout.split < 2 || os.availableParallelism() < 2)
    return 0;
  // info/0 holds about 1/split of the preprocessed messages: one short listing to decide.
  const estimate = messageFileNames(`${layout.root}/info/0`).length * layout.split;
  return estimate >= WORKER_THRESHOLD ? 2 : 0;
}

/**
 * A worker running scan-worker: from TypeScript sources (tests, tsx) the loader hooks are
 * per thread and "--import tsx" in execArgv does not reach the worker's loader on Node 20,
 * so such a worker registers tsx itself before importing the script.
 */
function startWorker(script: URL, job: WorkerJob): Worker {
  if (!script.pathname.endsWith(".ts")) return new Worker(script, { workerData: job });
  const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); })`;
  return new Worker(boot, { eval: true, workerData: job });
}

/**
 * The preprocessed messages read by worker threads, each taking every W-th split dir, and
 * handed out in split-dir order (the order qmail-qread and the in-thread walk give). Reading a
 * message is ~10 syscalls (mess, info, local/remote) plus header decoding: on 2 cores two
 * readers roughly halve a full listing. Each worker has at most MAX_IN_FLIGHT batches
 * unconsumed, so memory stays bounded when the consumer is slow.
 */
async function* scanInWorkers(
  layout: QueueLayout,
  opts: ScanOptions,
  count: number,
): AsyncGenerator<ScanCandidate> {
  const { split } = layout;
  const queues = new Map<number, WorkerBatch[]>();
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const ext = path.extname(fileURLToPath(import.meta.url));
  const script = new URL(`./scan-worker${ext}`, import.meta.url);
  const workers = Array.from({ length: count }, (_, w) => {
    const job: WorkerJob = {
      layout: { root: layout.root, split, bigTodo: layout.bigTodo },
      buckets: Array.from({ length: split }, (_, n) => n).filter((n) => n % count === w),
      headers: opts.headers ?? true,
      headBytes: opts.headBytes,
    };
    const worker = startWorker(script, job);
    worker.on("message", (batch: WorkerBatch) => {
      const q = queues.get(batch.bucket) ?? [];
      q.push(batch);
      queues.set(batch.bucket, q);
      wake?.();
    });
    worker.on("error", (err) => {
      failure ??= err;
      wake?.();
    });
    worker.on("exit", (code) => {
      if (code !== 0) failure ??= new Error(`scan worker exited with code ${code}`);
      wake?.();
    });
    return worker;
  });
  const pacer = new Pacer();
  try {
    for (let n = 0; n < split; n++) {
      const owner = workers[n % count] as Worker;
      for (let done = false; !done; ) {
        const batch = queues.get(n)?.shift();
        if (!batch) {
          if (failure) throw failure;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          continue;
        }
        owner.postMessage("credit");
        for (const item of batch.items) {
          const head = Buffer.from(
            item.headBlock.buffer,
            item.headBlock.byteOffset,
            item.headBlock.byteLength,
          );
          yield candidateOf(layout.root, item.message, head, item.headComplete, item.bodyOffset);
          await pacer.tick();
        }
        done = batch.last;
      }
    }
  } finally {
    for (const w of workers) void w.terminate();
  }
  yield* paced(new Walker(layout, opts).pending());
}

/**
 * Every message (or opts.ids), yielding to the event loop between slices of synchronous reads.
 * A full scan of a big queue runs in worker threads (ScanOptions.workers).
 */
export function scanQueue(layout: QueueLayout, opts: ScanOptions = {}): AsyncGenerator<ScanCandidate> {
  const workers = workersFor(layout, opts);
  return workers > 0 ? scanInWorkers(layout, opts, workers) : paced(scanQueueSync(layout, opts));
}
