// Every message of a queue, as a stream of candidates for listings, filters and purge plans.
// The reading itself is walk.ts's Walker; this module runs it in this thread (the default,
// paced so that the agent keeps serving other calls) or in worker threads (scan-worker.ts,
// ScanOptions.workers), and applies a selection (ScanOptions.select) where it saves the most:
// header criteria on the raw head before any envelope file is opened.
//
// Measured on the project's 2-core VM, 100,000 messages of the mixed queue, warm cache: ~10
// syscalls a message (3 opens at ~10 us each, the rest 2-4 us) and ~15 us of header decoding
// and hashing make a listing 5.5-8 s, 70% of it in the kernel; see bench/README.md.

import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type CompiledFilter, compileFilter, type FilterOptions } from "./filter.js";
import { QueueAccessError } from "./layout.js";
import type { Filter, QueueLayout } from "./model.js";
import {
  unpackCandidates,
  unpackHeads,
  type WorkerChunk,
  type WorkerJob,
  type WorkerKeep,
  type WorkerResult,
} from "./scan-transfer.js";
import { type ScanCandidate, Walker, type WalkOptions } from "./walk.js";

export { candidateOf, EMPTY_HEADERS, type ScanCandidate } from "./walk.js";

export interface ScanOptions extends Omit<WalkOptions, "headTest" | "accept"> {
  /** Only these ids (qmHandle -mN, purge re-check), in this order; ids not in the queue are skipped. */
  ids?: Iterable<string>;
  /**
   * Called with each raw header block before anything else is read: false skips the message
   * without opening its envelope files. For raw header searches (qmHandle -h/-H, -S on the
   * raw subject): the filter still runs on the full candidate afterwards.
   */
  prefilter?: (headBlock: Buffer) => boolean;
  /**
   * Only the messages this filter selects, decided as each message is read: its header
   * criteria before the envelope files are opened (CompiledFilter.matchesHead), the rest on
   * the whole candidate. A listing or preview with a filter should pass it here rather than
   * filter the scan's output: a message the header criteria reject then costs 3 syscalls
   * instead of 10 and no decoding (bench/README.md).
   */
  select?: ScanSelection;
  /**
   * scanQueue only: worker threads reading the messages. Default 0, in this thread: on the
   * project's 2-core VM two workers listed 100,000 messages no faster than one thread (5.5-5.9 s
   * against 5.7 s with the machine idle, slower under load) for twice the CPU time and twice the
   * memory, because opening files there does not scale across CPUs (two threads opening
   * different files took the wall time of one thread opening them all). On a host where it
   * does, 2 can halve a full scan. Scans by ids, with a prefilter or a custom routing always
   * run in-thread.
   */
  workers?: number;
  /** Stops the scan (it throws the signal's reason) once aborted, also while nothing matches. */
  signal?: AbortSignal;
}

/** A filter for the scan to apply (ScanOptions.select), as plain data. */
export interface ScanSelection {
  filter: Filter;
  /** Unix seconds the ages are computed against (compileFilter's `now`). */
  now: number;
  options?: FilterOptions;
}

function compileSelection(select: ScanSelection): CompiledFilter {
  return compileFilter(select.filter, select.now, select.options);
}

/** What each message needs read: what the caller shows, and what the selection looks at. */
function partsRead(
  opts: ScanOptions,
  filter: CompiledFilter | undefined,
): { headers: boolean; envelope: boolean } {
  return {
    headers: (opts.headers ?? true) || (filter?.needsHeaders ?? false),
    envelope: (opts.envelope ?? true) || (filter?.needsEnvelope ?? false),
  };
}

function walkerFor(layout: QueueLayout, opts: ScanOptions, filter: CompiledFilter | undefined): Walker {
  const { prefilter } = opts;
  const headTest =
    prefilter && filter
      ? (block: Buffer) => prefilter(block) && filter.matchesHead(block)
      : (prefilter ?? (filter && ((block: Buffer) => filter.matchesHead(block))));
  return new Walker(layout, {
    ...partsRead(opts, filter),
    headBytes: opts.headBytes,
    routing: opts.routing,
    headTest,
    accept: filter && ((c) => filter.matches(c)),
  });
}

/** Every message (or opts.ids), synchronously: for batch tools and benchmarks. */
export function* scanQueueSync(layout: QueueLayout, opts: ScanOptions = {}): Generator<ScanCandidate> {
  for (const c of walk(layout, opts, opts.select && compileSelection(opts.select))) if (c) yield c;
}

/** The walk, with undefined for each message skipped (see Walker.all). */
function* walk(
  layout: QueueLayout,
  opts: ScanOptions,
  filter: CompiledFilter | undefined,
): Generator<ScanCandidate | undefined> {
  const walker = walkerFor(layout, opts, filter);
  yield* opts.ids ? walker.some(opts.ids) : walker.all();
}

// The agent serves other calls while it scans: give the event loop a turn this often.
const SLICE_MS = 8;

/**
 * Gives the event loop a turn when the current slice of synchronous work is over, and stops
 * the work there once `signal` is aborted (a client hung up: the rest of the scan is waste).
 */
class Pacer {
  private sliceStart = performance.now();
  private count = 0;

  constructor(private readonly signal?: AbortSignal) {}

  async tick(): Promise<void> {
    // performance.now() costs ~50 ns: look at the clock every 64 items only.
    if ((++this.count & 63) === 0 && performance.now() - this.sliceStart > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.signal?.throwIfAborted();
      this.sliceStart = performance.now();
    }
  }
}

/**
 * Runs a synchronous walk as an async one, yielding to the event loop between ~8 ms slices.
 * Undefined items are work done with nothing to yield (a message the selection rejected).
 */
export async function* paced<T>(items: Iterable<T | undefined>, signal?: AbortSignal): AsyncGenerator<T> {
  const pacer = new Pacer(signal);
  for (const item of items) {
    if (item !== undefined) yield item;
    await pacer.tick();
  }
}

function workersFor(opts: ScanOptions): number {
  return opts.ids || opts.prefilter || opts.routing ? 0 : (opts.workers ?? 0);
}

/**
 * A worker running scan-worker: from TypeScript sources (tests, tsx) the loader hooks are
 * per thread and "--import tsx" in execArgv does not reach the worker's loader on Node 20,
 * so such a worker registers tsx itself before importing the script.
 */
function startWorker(script: URL, job: WorkerJob): Worker {
  // A worker holds a few chunks at a time (~1 MB): small heaps make V8 collect early instead
  // of growing each worker's heap to its default size (measured: 220 MB peak RSS for a
  // 100,000-message listing with default limits).
  const resourceLimits = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 };
  if (!script.pathname.endsWith(".ts")) return new Worker(script, { workerData: job, resourceLimits });
  const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); })`;
  return new Worker(boot, { eval: true, workerData: job, resourceLimits });
}

/** Ids per chunk: a message then costs ~1 us of messaging, and both threads stay busy in turn. */
const CHUNK = 256;
/** Chunks handed out and not yet yielded, all workers together: what bounds memory (~1.5 KB a message). */
const MAX_AHEAD = 16;

/** The walk cut into chunks, each listing read when the walk reaches it (as the in-thread walk does). */
function* chunksOf(walker: Walker, headsFirst: boolean): Generator<Omit<WorkerChunk, "seq">> {
  for (const { ids, flags } of walker.bucketListings()) {
    for (let i = 0; i < ids.length; i += CHUNK) {
      const slice = { ids: ids.slice(i, i + CHUNK), flags: flags.slice(i, i + CHUNK) };
      yield { type: "chunk", state: "preprocessed", ...slice, headsFirst };
    }
  }
  for (const { ids, state } of walker.pendingListings()) {
    for (let i = 0; i < ids.length; i += CHUNK) {
      yield { type: "chunk", state, ids: ids.slice(i, i + CHUNK), flags: [], headsFirst };
    }
  }
}

/**
 * The walk with the messages read by worker threads. This thread lists the directories
 * (~0.5 us an entry) and hands out chunks of ids in turn; the workers do the per-message work
 * and post compact results, yielded in chunk order: the order of the in-thread walk and of
 * qmail-qread. Handing out chunks rather than whole split dirs keeps both workers on the dir
 * being consumed (with whole dirs, a worker one dir ahead stalls once its output is full).
 * With a selection, its header criteria run here on the heads the workers post first (re2
 * may only be loaded by one thread, see walk.ts), and the rest on the finished candidates.
 */
async function* scanInWorkers(
  layout: QueueLayout,
  opts: ScanOptions,
  count: number,
  filter: CompiledFilter | undefined,
): AsyncGenerator<ScanCandidate> {
  const walker = walkerFor(layout, opts, undefined);
  const ext = path.extname(fileURLToPath(import.meta.url));
  const script = new URL(`./scan-worker${ext}`, import.meta.url);
  const job: WorkerJob = {
    layout: { root: layout.root, split: layout.split, bigTodo: layout.bigTodo },
    ...partsRead(opts, filter),
    headBytes: opts.headBytes,
  };
  const done = new Map<number, WorkerResult>();
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const workers = Array.from({ length: count }, () => {
    const worker = startWorker(script, job);
    worker.on("message", (result: WorkerResult) => {
      if (result.kind === "heads" && !result.failure) {
        // The head verdict goes straight back: the worker finishes the chunk meanwhile.
        const keep = new Uint8Array(unpackHeads(result).map((block) => (filter?.matchesHead(block) ? 1 : 0)));
        const verdict: WorkerKeep = { type: "keep", seq: result.seq, keep };
        worker.postMessage(verdict);
        return;
      }
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
  const chunks = chunksOf(walker, filter?.hasHeadCriteria ?? false);
  let handedOut = 0;
  let exhausted = false;
  const pacer = new Pacer(opts.signal);
  try {
    for (let next = 0; ; next++) {
      opts.signal?.throwIfAborted();
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
        if (filter && !filter.matches(c)) continue;
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
  // Compiled here first, so that a bad filter fails before anything is read.
  const filter = opts.select && compileSelection(opts.select);
  const workers = workersFor(opts);
  return workers > 0
    ? scanInWorkers(layout, opts, workers, filter)
    : paced(walk(layout, opts, filter), opts.signal);
}
