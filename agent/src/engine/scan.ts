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
import { type CompiledFilter, compileFilter, type FilterOptions } from "./filter.js";
import { cutHeaderBlock, summarizeHeaders } from "./headers.js";
import {
  isMessageName,
  messageFileNames,
  messagePaths,
  QueueAccessError,
  qmailHomeOf,
  queueAccessError,
  splitOf,
  todoDirs,
} from "./layout.js";
import type {
  Filter,
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
   * Only the messages this filter selects, decided where each message is read: its header
   * criteria before the envelope files are opened (see CompiledFilter.matchesHead), the rest
   * once the candidate is whole. Plain data, so that worker threads can run it too.
   */
  select?: ScanSelection;
  /**
   * scanQueue only: worker threads reading the messages (0 = in-thread). Default: 2 for a full
   * scan of a queue of WORKER_THRESHOLD messages or more, on 2 or more cores. Scans by ids,
   * with a prefilter or a custom routing always run in-thread.
   */
  workers?: number;
}

/** A filter for the scan to apply (ScanOptions.select). */
export interface ScanSelection {
  filter: Filter;
  /** Unix seconds the ages are computed against (compileFilter's `now`). */
  now: number;
  options?: FilterOptions;
}

function compileSelection(select: ScanSelection): CompiledFilter {
  return compileFilter(select.filter, select.now, select.options);
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
  private readonly filter: CompiledFilter | undefined;
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
    this.filter = opts.select && compileSelection(opts.select);
  }

  /** Ids in bounce/ (read once per walk: one listing instead of a stat per message). */
  bouncingIds(): Set<string> {
    this.bouncing ??= new Set(messageNames(this.root, "bounce"));
    return this.bouncing;
  }

  *all(): Generator<ScanCandidate> {
    for (const bucket of this.bucketListings()) {
      for (let i = 0; i < bucket.ids.length; i++) {
        const c = this.preprocessed(bucket.ids[i] as string, bucket.flags[i] as number);
        if (c) yield c;
      }
    }
    for (const { ids, state } of this.pendingListings()) {
      for (const id of ids) {
        const c = this.queued(id, state);
        if (c) yield c;
      }
    }
  }

  /**
   * The preprocessed messages of each split dir, listed when the walk reaches it: one listing of
   * info/N, local/N and remote/N per dir replaces a failing open per absent channel file (a
   * thrown ENOENT costs ~10 us in node), and the bounce/ listing a stat per message.
   */
  *bucketListings(): Generator<BucketListing> {
    const bouncing = this.bouncingIds();
    for (let n = 0; n < this.layout.split; n++) {
      const infos = messageNames(this.root, `info/${n}`);
      if (infos.length === 0) continue;
      const local = new Set(messageNames(this.root, `local/${n}`));
      const remote = new Set(messageNames(this.root, `remote/${n}`));
      const ids: string[] = [];
      const flags: number[] = [];
      for (const id of infos) {
        // A file in the wrong split dir is invisible to qmail-send: check.ts reports it.
        if (splitOf(this.layout, id) !== n) continue;
        ids.push(id);
        flags.push(
          (local.has(id) ? HAS_LOCAL : 0) | (remote.has(id) ? HAS_REMOTE : 0) | (bouncing.has(id) ? BOUNCING : 0),
        );
      }
      yield { ids, flags };
    }
  }

  /** Messages not yet preprocessed: todo/, then intd/ without todo. Listed after every info/N. */
  *pendingListings(): Generator<PendingListing> {
    const committed = new Set<string>();
    for (const dir of todoDirs(this.layout, "todo")) {
      const ids = messageNames(this.root, dir);
      for (const id of ids) committed.add(id);
      yield { ids, state: "todo" };
    }
    for (const dir of todoDirs(this.layout, "intd")) {
      yield { ids: messageNames(this.root, dir).filter((id) => !committed.has(id)), state: "being-written" };
    }
  }

  *some(ids: Iterable<string>): Generator<ScanCandidate> {
    for (const id of ids) {
      if (!isMessageName(id)) continue;
      const p = messagePaths(this.layout, id);
      const c =
        this.preprocessed(id, HAS_LOCAL | HAS_REMOTE | (this.bouncingIds().has(id) ? BOUNCING : 0)) ??
        (exists(`${this.root}/${p.todo}`) ? this.queued(id, "todo") : undefined) ??
        this.queued(id, "being-written");
      if (c) yield c;
    }
  }

  /** A preprocessed message; `flags` say which channel files exist and whether it is bouncing. */
  preprocessed(id: string, flags: number): ScanCandidate | undefined {
    return this.candidate(id, (paths) => {
      const info = readSmall(`${this.root}/${paths.info}`, true);
      if (!info) return undefined;
      const { sender } = parseInfo(info.data);
      const recipients: Recipient[] = [];
      if (flags & HAS_LOCAL) this.channel(`${this.root}/${paths.local}`, "local", recipients);
      if (flags & HAS_REMOTE) this.channel(`${this.root}/${paths.remote}`, "remote", recipients);
      const bouncing = (flags & BOUNCING) !== 0;
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

  queued(id: string, state: "todo" | "being-written"): ScanCandidate | undefined {
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
   * The mess head first: when a prefilter or the selection's header criteria reject it, the
   * envelope files are never opened (3 syscalls per message instead of 10: what makes a header
   * search as cheap as grep), and nothing is decoded.
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
    if (this.filter && !this.filter.matchesHead(cut.block)) return undefined;
    const envelope = envelopeOf(paths);
    if (!envelope) return undefined;
    const summary = this.decode ? summarizeHeaders(cut.block) : undefined;
    const message: QueuedMessage = {
      id,
      // The cut block hashes as the head does (fingerprintOf cuts it again, finding no blank line).
      fingerprint: fingerprintOf(mess.size, cut.block),
      ...envelope,
      size: mess.size,
      headers: summary ? summary.headers : { ...EMPTY_HEADERS },
      clientIp: summary ? summary.clientIp : "",
      paths,
    };
    const bodyOffset = cut.complete
      ? cut.block.length + (mess.head[cut.block.length] === 0x0d ? 2 : 1)
      : mess.size;
    const c = candidateOf(this.root, message, cut.block, cut.complete, bodyOffset);
    return this.filter && !this.filter.matches(c) ? undefined : c;
  }
}

/** BucketListing.flags bits. */
export const HAS_LOCAL = 1;
export const HAS_REMOTE = 2;
export const BOUNCING = 4;

/** The preprocessed messages of one split dir, in readdir order. */
export interface BucketListing {
  ids: string[];
  /** Per id: HAS_LOCAL | HAS_REMOTE | BOUNCING. */
  flags: number[];
}

export interface PendingListing {
  ids: string[];
  state: "todo" | "being-written";
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

/** A slice of the walk that scan-worker.ts reads: ids of one listing, in order. */
export interface WorkerChunk {
  seq: number;
  /** "preprocessed" ids carry BucketListing flags; todo/intd ids none. */
  state: "preprocessed" | "todo" | "being-written";
  ids: string[];
  flags: number[];
}

/** What scan-worker.ts posts back for a chunk: compact, because copying objects between threads cost more than reading them. */
export interface WorkerResult {
  seq: number;
  /** JSON of one CompactMessage per candidate (JSON.parse is ~8x faster than a structured clone of the objects). */
  json: string;
  /** The candidates' header blocks end to end, transferred, not copied. */
  heads: ArrayBuffer;
  /** A read failed: the QueueAccessError to throw in the scanning thread. */
  failure?: { message: string; path: string; code: string };
}

export interface WorkerJob {
  layout: QueueLayout;
  headers: boolean;
  headBytes: number | undefined;
  select: ScanSelection | undefined;
}

/**
 * A candidate as one flat array, strings and numbers only:
 * id, fingerprint, state, birthTime, size, sender, recipients (4 per recipient: channel, address,
 * stored, done 0/1), from, to, cc, subject, subjectRaw, date, messageId, clientIp, headEnd (offset
 * of the block's end in `heads`), headComplete 0/1, bodyOffset.
 */
type CompactMessage = [
  string,
  string,
  MessageState,
  number,
  number,
  string,
  Array<string | number>,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  number,
  number,
  number,
];

/** Packs a chunk's candidates for the trip to the scanning thread (scan-worker.ts). */
export function packCandidates(seq: number, candidates: ScanCandidate[]): WorkerResult {
  let total = 0;
  for (const c of candidates) total += c.headBlock.length;
  const heads = new Uint8Array(total);
  let end = 0;
  const compact = candidates.map((c): CompactMessage => {
    const m = c.message;
    const h = m.headers;
    heads.set(c.headBlock, end);
    end += c.headBlock.length;
    const rcpts: Array<string | number> = [];
    for (const r of m.recipients) rcpts.push(r.channel, r.address, r.stored, r.done ? 1 : 0);
    return [
      m.id,
      m.fingerprint,
      m.state,
      m.birthTime,
      m.size,
      m.sender,
      rcpts,
      h.from,
      h.to,
      h.cc,
      h.subject,
      h.subjectRaw,
      h.date,
      h.messageId,
      m.clientIp,
      end,
      c.headComplete ? 1 : 0,
      c.bodyOffset,
    ];
  });
  return { seq, json: JSON.stringify(compact), heads: heads.buffer };
}

/** The candidates of a WorkerResult, with their paths computed again (7 strings: cheaper than copying them). */
function unpackCandidates(layout: QueueLayout, result: WorkerResult): ScanCandidate[] {
  const heads = Buffer.from(result.heads);
  const compact = JSON.parse(result.json) as CompactMessage[];
  let start = 0;
  return compact.map((m) => {
    const rcpts = m[6];
    const recipients: Recipient[] = [];
    for (let i = 0; i < rcpts.length; i += 4) {
      recipients.push({
        channel: rcpts[i] as "local" | "remote",
        address: rcpts[i + 1] as string,
        stored: rcpts[i + 2] as string,
        done: rcpts[i + 3] === 1,
      });
    }
    const state = m[2];
    const message: QueuedMessage = {
      id: m[0],
      fingerprint: m[1],
      state,
      birthTime: m[3],
      size: m[4],
      sender: m[5],
      recipients,
      headers: {
        from: m[7],
        to: m[8],
        cc: m[9],
        subject: m[10],
        subjectRaw: m[11],
        date: m[12],
        messageId: m[13],
      },
      clientIp: m[14],
      bouncing: state === "bouncing",
      paths: messagePaths(layout, m[0]),
    };
    const head = heads.subarray(start, m[15]);
    start = m[15];
    return candidateOf(layout.root, message, head, m[16] === 1, m[17]);
  });
}

/** Queues smaller than this are scanned in-thread: starting workers costs more than it saves. */
export const WORKER_THRESHOLD = 20_000;

function workersFor(layout: QueueLayout, opts: ScanOptions): number {
  if (opts.workers !== undefined) return opts.ids || opts.prefilter || opts.routing ? 0 : opts.workers;
  if (opts.ids || opts.prefilter || opts.routing || os.availableParallelism() < 2) return 0;
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

/** Ids per chunk: big enough that a message costs ~1 us of messaging, small enough to keep the threads busy in turn. */
const CHUNK = 256;
/** Chunks handed out and not yet yielded, all workers together: what bounds memory (~1.5 KB a message). */
const MAX_AHEAD = 16;

/** The walk cut into chunks, listings read as the walk reaches them (as the in-thread walk does). */
function* chunksOf(walker: Walker): Generator<Omit<WorkerChunk, "seq">> {
  for (const { ids, flags } of walker.bucketListings()) {
    for (let i = 0; i < ids.length; i += CHUNK) {
      yield { state: "preprocessed", ids: ids.slice(i, i + CHUNK), flags: flags.slice(i, i + CHUNK) };
    }
  }
  for (const { ids, state } of walker.pendingListings()) {
    for (let i = 0; i < ids.length; i += CHUNK) yield { state, ids: ids.slice(i, i + CHUNK), flags: [] };
  }
}

/**
 * The walk with the messages read by worker threads. This thread lists the directories (cheap:
 * ~0.5 us an entry) and hands out chunks of ids in turn; the workers do everything per message
 * (~10 syscalls at 2-8 us each on the project's VM, header decoding, the selection) and post
 * compact results, which are yielded in chunk order: the order of the in-thread walk and of
 * qmail-qread. Handing out chunks rather than whole split dirs keeps both workers busy on the
 * dir being consumed (with whole dirs, a worker one dir ahead stalls once its output is
 * full), and at most MAX_AHEAD chunks are out, so memory stays bounded when the consumer is slow.
 */
async function* scanInWorkers(
  layout: QueueLayout,
  opts: ScanOptions,
  count: number,
): AsyncGenerator<ScanCandidate> {
  const walker = new Walker(layout, opts);
  const ext = path.extname(fileURLToPath(import.meta.url));
  const script = new URL(`./scan-worker${ext}`, import.meta.url);
  const job: WorkerJob = {
    layout: { root: layout.root, split: layout.split, bigTodo: layout.bigTodo },
    headers: opts.headers ?? true,
    headBytes: opts.headBytes,
    select: opts.select,
  };
  const done = new Map<number, WorkerResult>();
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const workers = Array.from({ length: count }, () => {
    const worker = startWorker(script, job);
    worker.on("message", (result: WorkerResult) => {
      done.set(result.seq, result);
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
  const chunks = chunksOf(walker);
  let handedOut = 0;
  let exhausted = false;
  const pacer = new Pacer();
  try {
    for (let next = 0; ; next++) {
      // Keep MAX_AHEAD chunks out, round robin (listing a dir here when the walk reaches it).
      while (!exhausted && handedOut - next < MAX_AHEAD) {
        const chunk = chunks.next();
        if (chunk.done) exhausted = true;
        else (workers[handedOut % count] as Worker).postMessage({ ...chunk.value, seq: handedOut++ });
      }
      if (next === handedOut) break;
      let result = done.get(next);
      while (!result) {
        if (failure) throw failure;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        result = done.get(next);
      }
      done.delete(next);
      if (result.failure) {
        const { message, path: where, code } = result.failure;
        throw new QueueAccessError(message, where, code);
      }
      for (const c of unpackCandidates(layout, result)) {
        yield c;
        await pacer.tick();
      }
    }
  } finally {
    for (const w of workers) void w.terminate();
  }
}

/**
 * Every message (or opts.ids), yielding to the event loop between slices of synchronous reads.
 * A full scan of a big queue runs in worker threads (ScanOptions.workers).
 */
export function scanQueue(layout: QueueLayout, opts: ScanOptions = {}): AsyncGenerator<ScanCandidate> {
  if (opts.select) compileSelection(opts.select); // a bad filter fails here, before any worker starts
  const workers = workersFor(layout, opts);
  return workers > 0 ? scanInWorkers(layout, opts, workers) : paced(scanQueueSync(layout, opts));
}
