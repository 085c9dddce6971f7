// Every message of a queue, as a stream of candidates for listings, filters and purge plans.
// The reading itself is walk.ts's Walker; this module drives it, pipelined on the native
// reader's thread (scanQueue) or synchronously (scanQueueSync), and applies a selection
// (ScanOptions.select) where it saves the most: header criteria on the raw head before any
// envelope file is opened.

import { type CompiledFilter, compileFilter, type FilterOptions } from "./filter.js";
import type { Filter, QueueLayout } from "./model.js";
import {
  type ChunkDecode,
  type ChunkRead,
  readChunk,
  readChunkSync,
  type ScanCandidate,
  Walker,
  type WalkOptions,
} from "./walk.js";

export type { ScanCandidate } from "./walk.js";

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

function walkerFor(
  layout: QueueLayout,
  opts: ScanOptions,
  filter: CompiledFilter | undefined,
  listAhead = false,
): Walker {
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
    // The head criteria were decided on the head already (headTest).
    accept: filter && ((c) => filter.matchesPastHead(c)),
    listAhead,
  });
}

/** Every message (or opts.ids), synchronously: for batch tools and benchmarks. */
export function* scanQueueSync(layout: QueueLayout, opts: ScanOptions = {}): Generator<ScanCandidate> {
  for (const c of walk(layout, opts, opts.select && compileSelection(opts.select))) if (c) yield c;
}

/** The chunks of the walk: every message in walk order, or opts.ids one by one. */
function* chunksOf(walker: Walker, ids: Iterable<string> | undefined): Generator<ChunkRead> {
  if (!ids) return yield* walker.chunks();
  for (const id of ids) yield walker.one(id);
}

/** The walk read synchronously, with undefined for each message skipped (see ChunkRead). */
function* walk(
  layout: QueueLayout,
  opts: ScanOptions,
  filter: CompiledFilter | undefined,
): Generator<ScanCandidate | undefined> {
  const walker = walkerFor(layout, opts, filter);
  for (const chunk of chunksOf(walker, opts.ids)) yield* readChunkSync(walker.root, chunk);
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

  /**
   * Undefined while the slice goes on, else the turn to await. Not an async method: its
   * promise per item was ~5% of a listing's allocations (bench/README.md).
   */
  tick(): Promise<void> | undefined {
    // performance.now() costs ~50 ns: look at the clock every 64 items only.
    if ((++this.count & 63) !== 0 || performance.now() - this.sliceStart <= SLICE_MS) return undefined;
    return this.turn();
  }

  private async turn(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.signal?.throwIfAborted();
    this.sliceStart = performance.now();
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
    const turn = pacer.tick();
    if (turn) await turn;
  }
}

/**
 * Chunks read ahead on the native reader's thread while this thread decodes and matches the ones
 * before: what keeps both cores busy. Each chunk holds its messages' header blocks (0.5-2 KB
 * each, 64 KiB at most), so this bounds the memory read ahead.
 */
const AHEAD = 4;

/** The walk with its chunks read ahead on the reader's thread, yielded in walk order. */
async function* pipelined(walker: Walker, signal?: AbortSignal): AsyncGenerator<ScanCandidate> {
  const chunks = walker.chunks();
  const inFlight: Promise<ChunkDecode>[] = [];
  const refill = () => {
    while (inFlight.length < AHEAD) {
      const next = chunks.next();
      if (next.done) return;
      const read = readChunk(walker.root, next.value);
      // Observed now: a chunk that fails while an earlier one is awaited must not count as an
      // unhandled rejection (it is thrown when its turn comes, or dropped if the scan stops).
      read.catch(() => {});
      inFlight.push(read);
    }
  };
  const pacer = new Pacer(signal);
  refill();
  for (let read = inFlight.shift(); read; read = inFlight.shift()) {
    const candidates = (await read)();
    refill();
    for (const c of candidates) {
      if (c) yield c;
      const turn = pacer.tick();
      if (turn) await turn;
    }
  }
}

/**
 * Every message (or opts.ids), without blocking the event loop: a full scan is read ahead on
 * the native reader's thread, a scan by ids (a few messages) in this thread between slices of work.
 */
export function scanQueue(layout: QueueLayout, opts: ScanOptions = {}): AsyncGenerator<ScanCandidate> {
  // Compiled here first, so that a bad filter fails before anything is read.
  const filter = opts.select && compileSelection(opts.select);
  if (opts.ids) return paced(walk(layout, opts, filter), opts.signal);
  return pipelined(walkerFor(layout, opts, filter, true), opts.signal);
}
