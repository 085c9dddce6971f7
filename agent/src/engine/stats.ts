// Queue statistics without reading a single message: qmail-qstat's two numbers come from
// directory listings alone, like the script itself; the extras (bytes, oldest birth) need one
// lstat per mess and info file, the only costly part at a million messages.
//
// Measured on the project's 2-core VM, 1,000,000 messages (3.2M directory entries), warm cache,
// other jobs running: listings 1.6 s; bytes and ages add 2,000,000 lstats at 5-8 us each, 15 s
// however they are spread over threads (two threads of lstats ran no faster than one there).
// So a long-running agent keeps a StatsCache: the size of each mess file and the mtime of each
// info file it has seen, as sorted typed arrays per split dir (16 bytes an entry, 32 MB at a
// million messages), and a later call lstats only the entries that are new since (see
// StatsCache for what it trusts and why). Without a cache, bytes and ages are computed up to
// AUTO_DETAIL_LIMIT messages unless asked for, and the result says so (detailed: false).

import * as fs from "node:fs";
import { Worker } from "node:worker_threads";
import { isMessageName, messageFileNames, queueAccessError, readDirEntries, todoDirs } from "./layout.js";
import type { QueueLayout, QueueStats } from "./model.js";

/** Past this many messages, bytes and ages are left out unless asked for or cached (StatsOptions). */
export const AUTO_DETAIL_LIMIT = 200_000;

export interface StatsOptions {
  /**
   * lstat every mess and info file for bytes and the oldest birth time. Default: with a cache,
   * always; without, only when the queue holds about AUTO_DETAIL_LIMIT messages or fewer, so
   * that stats stay fast in an incident.
   */
  detail?: boolean;
  /**
   * Threads sharing the split directories. Default 0: on the calling thread, one split dir at a
   * time with a turn of the event loop between two. Measured at a million messages on the
   * project's 2-core VM, two workers were no faster (counts 1.6-1.7 s against 1.6 s, the full
   * first pass 15 s either way: lstat, like open, did not scale across CPUs there) and slower
   * with a cache (3.2 s against 2.2 s: start-up and the arrays' trip).
   */
  workers?: number;
  /** Sizes and birth times seen by earlier calls on this queue (one cache per queue root). */
  cache?: StatsCache;
}

/** Per split dir: sorted ids with the size of mess/N/<id> and the mtime of info/N/<id>. */
export interface CachedBucket {
  messIds: Float64Array;
  messSizes: Float64Array;
  infoIds: Float64Array;
  infoMtimes: Float64Array;
}

/**
 * What a long-running agent remembers between stats calls, so that a call at a million messages
 * lstats only what is new. Trusted without a new lstat, because of how qmail works:
 * - the size of mess/N/<id> once todo/<id> or info/N/<id> exists: qmail-queue writes mess
 *   before it commits (links intd to todo), so a committed message's mess never changes again;
 *   the size of a message being written (intd/ only) is never cached;
 * - the mtime of info/N/<id> for all but the oldest: qmail-send never changes it, qmHandle -t
 *   sets it to now (younger), and the only candidate for "oldest" is lstat'ed again each call,
 *   walking up until one is confirmed, so the oldest birth is always exact.
 * Not seen without an lstat: an id reused by the file system between two calls (the old
 * message gone, a new one given its inode number) keeps the old message's size in `bytes`
 * until the cache is renewed (renewAfterSeconds, default 10 minutes; the oldest stays exact, a
 * reused id being younger). That error is bounded by the churn between calls, and the cost of
 * avoiding it would be the full 2M lstats every call.
 */
export class StatsCache {
  buckets = new Map<number, CachedBucket>();
  /** Unix seconds of the last full pass (every entry lstat'ed), 0 before the first. */
  fullPassAt = 0;

  constructor(
    /** Queue root the cache belongs to: a cache is never used for another queue. */
    readonly root: string,
    readonly renewAfterSeconds = 600,
  ) {}
}

/** Entries below dir, any type, symlinks not followed: what `find dir -print` lists, minus dir. */
function descendants(abs: string): number {
  let n = 0;
  for (const e of readDirEntries(abs, true)) {
    n++;
    if (e.isDirectory()) n += descendants(`${abs}/${e.name}`);
  }
  return n;
}

/**
 * qmail-qstat: `find queue/todo -print | wc -w` minus one. With big-todo the split directories
 * are not messages and are not counted (the unpatched script would count them).
 */
function countTodo(layout: QueueLayout): number {
  const abs = `${layout.root}/todo`;
  const all = descendants(abs);
  if (!layout.bigTodo) return all;
  return all - readDirEntries(abs, true).filter((e) => e.isDirectory() && isMessageName(e.name)).length;
}

interface BucketTotals {
  /** Entries below mess/N (qmail-qstat's count). */
  mess: number;
  info: number;
  local: number;
  remote: number;
  bytes: number;
  oldest: number;
  /** The oldest of the info files never cached (ids beyond 2^53), 0 when none. */
  oldestUncached: number;
  /** lstat calls made (the cost a cache saves). */
  lstats: number;
  /** With detail: what the cache holds for these split dirs afterwards. */
  cached?: Record<number, CachedBucket>;
  /** A listing that failed (other than a missing split dir): rethrown by the caller. */
  error?: { code: string; path: string };
}

// The work on a set of split dirs N: entries below mess/N, message files in info/N, local/N,
// remote/N, and with `detail` the sizes of mess/N/* and the mtimes of info/N/*, taken from
// `cached` (the previous call's arrays for N, see StatsCache) where it holds them and lstat'ed
// otherwise. Plain JavaScript, run as is by worker threads (which need no TypeScript loader
// then) and in-thread through new Function when workers is 0: one body for both. Ids are
// compared as numbers in sorted Float64Arrays (2 x 8 bytes an entry, no string map: a Map of
// a million names costs ~80 MB); an id beyond 2^53 is never cached.
const BUCKETS_BODY = `
  const out = { mess: 0, info: 0, local: 0, remote: 0, bytes: 0, oldest: 0, oldestUncached: 0, lstats: 0, cached: {} };
  const numeric = /^[0-9]+$/;
  let current = root;
  // Calls fn for each entry of dir (none when it is missing), without collecting them: at 3M
  // entries, arrays of Dirents were a third of the time, in the garbage collector.
  const each = (dir, fn) => {
    current = dir;
    let d;
    try {
      d = fs.opendirSync(dir, { bufferSize: 1024 });
    } catch (e) {
      if (e.code === "ENOENT") return;
      throw e;
    }
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) fn(e);
    } finally {
      d.closeSync();
    }
  };
  const below = (dir) => {
    let n = 0;
    each(dir, (e) => {
      n++;
      if (e.isDirectory()) n += below(dir + "/" + e.name);
    });
    return n;
  };
  // Walks a sorted Float64Array alongside ascending ids (a merge, cheaper than a binary search
  // per id): at(id) is the index of id in it, -1 when absent.
  const cursor = (ids) => {
    let j = 0;
    return (id) => {
      if (!ids) return -1;
      while (j < ids.length && ids[j] < id) j++;
      return j < ids.length && ids[j] === id ? j : -1;
    };
  };
  // Message ids of one listing as numbers, growing; names that are not the plain decimal
  // form of a safe integer (beyond 2^53, leading zeros) are kept apart and never cached.
  const idList = () => ({ ids: new Float64Array(4096), n: 0, odd: [] });
  const addId = (list, name) => {
    // Digits only (checked by the caller): up to 15 of them without a leading zero is exactly
    // a safe integer that prints back as the name (cheaper than String(Number(name)) === name).
    if (name.length > 15 || (name.charCodeAt(0) === 48 && name.length > 1)) {
      list.odd.push(name);
      return;
    }
    const id = Number(name);
    if (list.n === list.ids.length) {
      const bigger = new Float64Array(list.ids.length * 2);
      bigger.set(list.ids);
      list.ids = bigger;
    }
    list.ids[list.n++] = id;
  };
  const sorted = (list) => list.ids.subarray(0, list.n).sort();
  const lstat = (file) => {
    out.lstats++;
    return fs.lstatSync(file, { throwIfNoEntry: false });
  };
  const older = (a, b) => (b !== 0 && (a === 0 || b < a) ? b : a);
  try {
    for (const n of buckets) {
      const mess = root + "/mess/" + n;
      const messList = idList();
      each(mess, (e) => {
        out.mess++;
        if (e.isDirectory()) out.mess += below(mess + "/" + e.name);
        else if (detail && e.isFile() && numeric.test(e.name)) addId(messList, e.name);
      });
      const infoList = idList();
      for (const kind of ["info", "local", "remote"]) {
        each(root + "/" + kind + "/" + n, (e) => {
          if (!e.isFile() || !numeric.test(e.name)) return;
          out[kind]++;
          if (detail && kind === "info") addId(infoList, e.name);
        });
      }
      if (!detail) continue;
      const before = cached && cached[n];
      const infoIds = sorted(infoList);
      const infoMtimes = new Float64Array(infoIds.length);
      const cachedInfo = cursor(before && before.infoIds);
      let kept = 0;
      for (let i = 0; i < infoIds.length; i++) {
        const id = infoIds[i];
        const at = cachedInfo(id);
        // 0: found changed or gone by the last check of the oldest, lstat'ed again.
        let mtime = at === -1 ? 0 : before.infoMtimes[at];
        if (mtime === 0) {
          const st = lstat(root + "/info/" + n + "/" + id);
          if (!st) continue; // finished meanwhile
          mtime = Math.floor(st.mtimeMs / 1000);
        }
        infoIds[kept] = id;
        infoMtimes[kept++] = mtime;
        out.oldest = older(out.oldest, mtime);
      }
      for (const name of infoList.odd) {
        const st = lstat(root + "/info/" + n + "/" + name);
        const mtime = st ? Math.floor(st.mtimeMs / 1000) : 0;
        out.oldest = older(out.oldest, mtime);
        out.oldestUncached = older(out.oldestUncached, mtime);
      }
      const final = infoIds.subarray(0, kept);
      const messIds = sorted(messList);
      const messSizes = new Float64Array(messIds.length);
      const inInfo = cursor(final);
      const cachedMess = cursor(before && before.messIds);
      let cachedCount = 0;
      for (let i = 0; i < messIds.length; i++) {
        const id = messIds[i];
        // Only a committed message's size is final (see StatsCache).
        const isFinal = inInfo(id) !== -1 || committed.has(id);
        const inCache = cachedMess(id);
        const at = isFinal ? inCache : -1;
        let size = at === -1 ? -1 : before.messSizes[at];
        if (at === -1) {
          const st = lstat(mess + "/" + id);
          if (!st) continue;
          size = st.size;
        }
        out.bytes += size;
        if (isFinal) {
          messIds[cachedCount] = id;
          messSizes[cachedCount++] = size;
        }
      }
      for (const name of messList.odd) {
        const st = lstat(mess + "/" + name);
        if (st) out.bytes += st.size;
      }
      out.cached[n] = {
        messIds: messIds.slice(0, cachedCount),
        messSizes: messSizes.slice(0, cachedCount),
        infoIds: final.slice(),
        infoMtimes: infoMtimes.slice(0, kept),
      };
    }
  } catch (e) {
    out.error = { code: String(e.code || "EIO"), path: current };
  }
  return out;
`;

const bucketsInThread = new Function(
  "fs",
  "root",
  "buckets",
  "detail",
  "cached",
  "committed",
  BUCKETS_BODY,
) as (
  fsModule: typeof fs,
  root: string,
  buckets: number[],
  detail: boolean,
  cached: Record<number, CachedBucket> | undefined,
  committed: Set<number>,
) => BucketTotals;

const WORKER_SOURCE = `
const fs = require("node:fs");
const { parentPort, workerData } = require("node:worker_threads");
const buckets = new Function("fs", "root", "buckets", "detail", "cached", "committed", workerData.body);
const out = buckets(fs, workerData.root, workerData.buckets, workerData.detail, workerData.cached, workerData.committed);
const moved = [];
for (const b of Object.values(out.cached)) moved.push(b.messIds.buffer, b.messSizes.buffer, b.infoIds.buffer, b.infoMtimes.buffer);
parentPort.postMessage(out, moved);
`;

function bucketsInWorker(
  root: string,
  buckets: number[],
  detail: boolean,
  cached: Record<number, CachedBucket> | undefined,
  committed: Set<number>,
): Promise<BucketTotals> {
  // The cached arrays are moved to the worker and back, never copied.
  const moved: ArrayBuffer[] = [];
  for (const b of Object.values(cached ?? {})) {
    for (const a of [b.messIds, b.messSizes, b.infoIds, b.infoMtimes]) moved.push(a.buffer as ArrayBuffer);
  }
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { root, buckets, detail, body: BUCKETS_BODY, cached, committed },
      transferList: moved,
    });
    worker.once("message", (t: BucketTotals) => resolve(t));
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`stats worker exited with code ${code}`));
    });
  });
}

/** `committed`: ids in todo/, whose mess is complete (see StatsCache). */
async function allBuckets(
  layout: QueueLayout,
  detail: boolean,
  workers: number,
  cache: StatsCache | undefined,
  committed: Set<number>,
): Promise<BucketTotals> {
  const all = Array.from({ length: layout.split }, (_, n) => n);
  const shares =
    workers <= 1 || layout.split === 1
      ? [all]
      : Array.from({ length: Math.min(workers, layout.split) }, (_, w) =>
          all.filter((n) => n % workers === w),
        );
  const cachedFor = (buckets: number[]): Record<number, CachedBucket> | undefined => {
    if (!cache || !detail) return undefined;
    const part: Record<number, CachedBucket> = {};
    for (const n of buckets) {
      const b = cache.buckets.get(n);
      if (b) part[n] = b;
    }
    return part;
  };
  const parts: BucketTotals[] = [];
  if (workers <= 0) {
    for (const n of all) {
      parts.push(bucketsInThread(fs, layout.root, [n], detail, cachedFor([n]), committed));
      // The agent serves other calls meanwhile: a split dir is 1/split of the queue (~35 ms of
      // listing at a million messages, ~0.7 s when all its files are lstat'ed).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } else {
    parts.push(
      ...(await Promise.all(
        shares.map((b) => bucketsInWorker(layout.root, b, detail, cachedFor(b), committed)),
      )),
    );
  }
  const sum: BucketTotals = {
    mess: 0,
    info: 0,
    local: 0,
    remote: 0,
    bytes: 0,
    oldest: 0,
    oldestUncached: 0,
    lstats: 0,
  };
  // Moved to the workers: the cache is rebuilt from their answers (or stays empty on failure).
  if (cache && detail && workers > 0) cache.buckets.clear();
  for (const p of parts) {
    if (p.error) {
      cache?.buckets.clear();
      throw queueAccessError("read", p.error.path, { code: p.error.code });
    }
    sum.mess += p.mess;
    sum.info += p.info;
    sum.local += p.local;
    sum.remote += p.remote;
    sum.bytes += p.bytes;
    sum.lstats += p.lstats;
    if (p.oldest !== 0 && (sum.oldest === 0 || p.oldest < sum.oldest)) sum.oldest = p.oldest;
    if (p.oldestUncached !== 0 && (sum.oldestUncached === 0 || p.oldestUncached < sum.oldestUncached))
      sum.oldestUncached = p.oldestUncached;
    if (cache && detail) for (const [n, b] of Object.entries(p.cached ?? {})) cache.buckets.set(Number(n), b);
  }
  return sum;
}

/**
 * The oldest birth, confirmed: the cached mtime of the oldest info file is lstat'ed again, and
 * while it has changed (qmHandle -t, or the id now names a younger message) or the file is
 * gone, the next oldest is tried. After MAX_RECHECKS changed files in one call, the cached
 * mtimes are not worth trusting: undefined asks for a pass without them.
 */
const MAX_RECHECKS = 64;

function confirmedOldest(layout: QueueLayout, cache: StatsCache): number | undefined {
  for (let tries = 0; tries < MAX_RECHECKS; tries++) {
    let best: { bucket: CachedBucket; n: number; i: number } | undefined;
    let min = 0;
    for (const [n, bucket] of cache.buckets) {
      const t = bucket.infoMtimes;
      for (let i = 0; i < t.length; i++) {
        const v = t[i] as number;
        if (v > 0 && (min === 0 || v < min)) {
          min = v;
          best = { bucket, n, i };
        }
      }
    }
    if (!best) return 0;
    const st = fs.lstatSync(`${layout.root}/info/${best.n}/${best.bucket.infoIds[best.i]}`, {
      throwIfNoEntry: false,
    });
    const now = st?.isFile() ? Math.floor(st.mtimeMs / 1000) : 0;
    if (now === min) return min;
    // 0 marks it gone: skipped from now on, dropped at the next pass.
    best.bucket.infoMtimes[best.i] = now;
  }
  return undefined;
}

/**
 * qmail-qstat's first number is `find queue/mess/* -print | wc -w` minus the top-level entries:
 * every entry below mess/'s (non-dot) entries. The split dirs are counted with the buckets;
 * this adds what lies below any other directory in mess/ (lost+found...).
 */
function messOutsideSplitDirs(layout: QueueLayout): number {
  let n = 0;
  for (const e of readDirEntries(`${layout.root}/mess`, false)) {
    const splitDir = isMessageName(e.name) && Number(e.name) < layout.split;
    if (!splitDir && !e.name.startsWith(".") && e.isDirectory())
      n += descendants(`${layout.root}/mess/${e.name}`);
  }
  return n;
}

/** qmail-qstat's numbers and more; `now` in unix seconds gives the oldest message's age. */
export async function queueStats(
  layout: QueueLayout,
  now = Math.floor(Date.now() / 1000),
  opts: StatsOptions = {},
): Promise<QueueStats> {
  const { root } = layout;
  const committed = new Set<string>();
  for (const dir of todoDirs(layout, "todo"))
    for (const id of messageFileNames(`${root}/${dir}`)) committed.add(id);
  let beingWritten = 0;
  for (const dir of todoDirs(layout, "intd")) {
    for (const id of messageFileNames(`${root}/${dir}`)) if (!committed.has(id)) beingWritten++;
  }
  const workers = opts.workers ?? 0;
  const cache = opts.cache;
  if (cache && cache.root !== root) throw new Error(`stats cache of ${cache.root} used for ${root}`);
  // info/0 holds about 1/split of the messages: one short listing decides the default.
  const detailed =
    opts.detail ??
    (cache !== undefined ||
      messageFileNames(`${root}/info/0`).length * layout.split + committed.size <= AUTO_DETAIL_LIMIT);
  const nowSeconds = Math.floor(Date.now() / 1000);
  if (cache && nowSeconds - cache.fullPassAt >= cache.renewAfterSeconds) cache.buckets.clear();
  const fullPass = cache !== undefined && cache.buckets.size === 0;
  const committedIds = new Set([...committed].map(Number));
  let t = await allBuckets(layout, detailed, workers, cache, committedIds);
  if (cache && detailed) {
    if (fullPass) cache.fullPassAt = nowSeconds;
    const oldest = fullPass ? t.oldest : confirmedOldest(layout, cache);
    if (oldest === undefined) {
      // Many birth times changed since the cache was filled: count again from scratch.
      cache.buckets.clear();
      t = await allBuckets(layout, detailed, workers, cache, committedIds);
      cache.fullPassAt = nowSeconds;
    } else {
      const u = t.oldestUncached;
      t.oldest = u !== 0 && (oldest === 0 || u < oldest) ? u : oldest;
    }
  }
  return {
    messagesInQueue: t.mess + messOutsideSplitDirs(layout),
    notPreprocessed: countTodo(layout),
    preprocessed: t.info,
    withLocal: t.local,
    withRemote: t.remote,
    bouncing: messageFileNames(`${root}/bounce`).length,
    beingWritten,
    bytes: t.bytes,
    oldestBirth: t.oldest,
    oldestAgeSeconds: t.oldest === 0 ? 0 : Math.max(0, now - t.oldest),
    detailed,
  };
}

/** qmail-qstat's output, byte for byte. */
export function renderQstat(stats: QueueStats): string {
  return `messages in queue: ${stats.messagesInQueue}\nmessages in queue but not yet preprocessed: ${stats.notPreprocessed}\n`;
}
