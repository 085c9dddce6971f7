// Queue statistics without reading a single message: qmail-qstat's two numbers come from
// directory listings alone, like the script itself; the extras (bytes, oldest birth) need one
// lstat per mess and info file, the only costly part at a million messages.
//
// Listings and lstats go through the native addon (queue_dirs.c): a split dir's listing comes
// back as one array of ids, and its lstats are made relative to the open directory. Measured on
// the project's 2-core VM, 1,000,000 messages (3.2M directory entries), warm cache: listings
// 1.0-1.1 s, as long as qmail-qstat's find takes (1.4 s through node's Dirents); bytes and ages
// add 2,000,000 lstats, 8.5 s (15 s through node; two threads of lstats ran no faster than one).
// So a long-running agent keeps a StatsCache: the size of each mess file and the mtime of each
// info file it has seen, as sorted typed arrays per split dir (16 bytes an entry, 32 MB at a
// million messages), and a later call lstats only the entries that are new since (see
// StatsCache for what it trusts and why). Without a cache, bytes and ages are computed up to
// AUTO_DETAIL_LIMIT messages unless asked for, and the result says so (detailed: false).

import * as fs from "node:fs";
import { isMessageName, readDirEntries, todoDirs } from "./layout.js";
import type { QueueLayout, QueueStats } from "./model.js";
import { type DirListing, listDirectory, messageFileNames, native, nativeFailure } from "./native.js";
import { lstatQueueFile } from "./queue-file.js";

/** Past this many messages, bytes and ages are left out unless asked for or cached (StatsOptions). */
export const AUTO_DETAIL_LIMIT = 200_000;

export interface StatsOptions {
  /**
   * lstat every mess and info file for bytes and the oldest birth time. Default: with a cache,
   * always; without, only when the queue holds about AUTO_DETAIL_LIMIT messages or fewer, so
   * that stats stay fast in an incident.
   */
  detail?: boolean;
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

/** Entries below abs, any type, symlinks not followed: what `find abs -print` lists, minus abs. */
function below(abs: string): number {
  const l = listDirectory(abs);
  return l ? entriesBelow(abs, l) : 0;
}

/** below(abs) for a directory already listed. */
function entriesBelow(abs: string, l: DirListing): number {
  let n = l.count;
  for (const dir of l.dirs) n += below(`${abs}/${dir}`);
  return n;
}

/** Message files (regular, named by digits) of a listing. */
const messageFiles = (l: DirListing | undefined) => (l ? l.ids.length + l.odd.length : 0);

/**
 * qmail-qstat: `find queue/todo -print | wc -w` minus one. With big-todo the split directories
 * are not messages and are not counted (the unpatched script would count them).
 */
function countTodo(layout: QueueLayout): number {
  const abs = `${layout.root}/todo`;
  const l = listDirectory(abs);
  if (!l) return 0;
  const all = entriesBelow(abs, l);
  return layout.bigTodo ? all - l.dirs.filter(isMessageName).length : all;
}

interface BucketTotals {
  /** Entries below mess/N (qmail-qstat's count). */
  mess: number;
  info: number;
  local: number;
  remote: number;
  bytes: number;
  oldest: number;
  /** The oldest of the info files never cached (odd names), 0 when none. */
  oldestUncached: number;
  /** With detail: what the cache holds for this split dir afterwards. */
  cached?: CachedBucket;
}

/**
 * Walks a sorted Float64Array alongside ascending ids (a merge, cheaper than a binary search
 * per id): at(id) is the index of id in it, -1 when absent.
 */
function cursor(ids: Float64Array | undefined): (id: number) => number {
  let j = 0;
  return (id) => {
    if (!ids) return -1;
    while (j < ids.length && (ids[j] as number) < id) j++;
    return j < ids.length && ids[j] === id ? j : -1;
  };
}

const older = (a: number, b: number) => (b !== 0 && (a === 0 || b < a) ? b : a);

/** lstat size and mtime of dir/<id> for each id (-1, -1 when absent). */
function statIds(dir: string, ids: Float64Array): Float64Array {
  // None to stat (all cached, or a split dir missing): the directory is not even opened.
  if (ids.length === 0) return ids;
  try {
    return native.statIds(dir, ids);
  } catch (err) {
    const i = (err as { index?: number }).index;
    throw nativeFailure("stat", i === undefined ? dir : `${dir}/${ids[i]}`, err);
  }
}

/**
 * Split dir N: entries below mess/N, message files in info/N, local/N and remote/N, and with
 * `detail` the sizes of mess/N/* and the mtimes of info/N/*, taken from `before` (the cache's
 * arrays for N, see StatsCache) where it holds them and lstat'ed otherwise. Ids are compared as
 * numbers in sorted Float64Arrays (16 bytes an entry, no string map: a Map of a million names
 * costs ~80 MB); a name that is no safe integer is never cached.
 */
function bucketTotals(
  root: string,
  n: number,
  detail: boolean,
  before: CachedBucket | undefined,
  committed: Set<number>,
): BucketTotals {
  const messDir = `${root}/mess/${n}`;
  const infoDir = `${root}/info/${n}`;
  const mess = listDirectory(messDir);
  const info = listDirectory(infoDir);
  const out: BucketTotals = {
    mess: mess ? entriesBelow(messDir, mess) : 0,
    info: messageFiles(info),
    local: messageFiles(listDirectory(`${root}/local/${n}`)),
    remote: messageFiles(listDirectory(`${root}/remote/${n}`)),
    bytes: 0,
    oldest: 0,
    oldestUncached: 0,
  };
  if (!detail) return out;

  // Birth times: cached ones as they are (0: found changed or gone, lstat'ed again).
  const infoIds = (info?.ids ?? new Float64Array(0)).sort();
  const infoMtimes = new Float64Array(infoIds.length);
  const cachedInfo = cursor(before?.infoIds);
  const unknownInfo: number[] = [];
  infoIds.forEach((id, i) => {
    const at = cachedInfo(id);
    infoMtimes[i] = at === -1 ? 0 : (before?.infoMtimes[at] as number);
    if (infoMtimes[i] === 0) unknownInfo.push(i);
  });
  const infoStats = statIds(
    infoDir,
    Float64Array.from(unknownInfo, (i) => infoIds[i] as number),
  );
  unknownInfo.forEach((i, k) => {
    // NaN: gone (its size is -1; an mtime may be anything).
    infoMtimes[i] = infoStats[2 * k] === -1 ? Number.NaN : (infoStats[2 * k + 1] as number);
  });
  let kept = 0;
  infoIds.forEach((id, i) => {
    const mtime = infoMtimes[i] as number;
    if (Number.isNaN(mtime)) return; // finished meanwhile
    infoIds[kept] = id;
    infoMtimes[kept++] = mtime;
    out.oldest = older(out.oldest, mtime);
  });
  for (const name of info?.odd ?? []) {
    const st = lstatQueueFile(`${infoDir}/${name}`);
    const mtime = st ? Number(st.mtimeMs / 1000n) : 0;
    out.oldest = older(out.oldest, mtime);
    out.oldestUncached = older(out.oldestUncached, mtime);
  }
  const finalInfo = infoIds.subarray(0, kept);

  // Sizes: only a committed message's is final, and only a final one comes from the cache.
  const messIds = (mess?.ids ?? new Float64Array(0)).sort();
  const messSizes = new Float64Array(messIds.length);
  const isFinal = new Uint8Array(messIds.length);
  const inInfo = cursor(finalInfo);
  const cachedMess = cursor(before?.messIds);
  const unknownMess: number[] = [];
  messIds.forEach((id, i) => {
    isFinal[i] = inInfo(id) !== -1 || committed.has(id) ? 1 : 0;
    const at = cachedMess(id);
    if (isFinal[i] && at !== -1) messSizes[i] = before?.messSizes[at] as number;
    else unknownMess.push(i);
  });
  const messStats = statIds(
    messDir,
    Float64Array.from(unknownMess, (i) => messIds[i] as number),
  );
  unknownMess.forEach((i, k) => {
    messSizes[i] = messStats[2 * k] as number;
  });
  let cachedCount = 0;
  messIds.forEach((id, i) => {
    const size = messSizes[i] as number;
    if (size === -1) return; // finished meanwhile
    out.bytes += size;
    if (isFinal[i]) {
      messIds[cachedCount] = id;
      messSizes[cachedCount++] = size;
    }
  });
  for (const name of mess?.odd ?? []) out.bytes += Number(lstatQueueFile(`${messDir}/${name}`)?.size ?? 0);
  out.cached = {
    messIds: messIds.slice(0, cachedCount),
    messSizes: messSizes.slice(0, cachedCount),
    infoIds: finalInfo.slice(),
    infoMtimes: infoMtimes.slice(0, kept),
  };
  return out;
}

/**
 * Every split dir, one at a time with a turn of the event loop between two (the agent serves
 * other calls meanwhile: a split dir is 1/split of the queue). `committed`: ids in todo/, whose
 * mess is complete (see StatsCache). The cache is updated only when every split dir was read.
 */
async function allBuckets(
  layout: QueueLayout,
  detail: boolean,
  cache: StatsCache | undefined,
  committed: Set<number>,
): Promise<BucketTotals> {
  const sum: BucketTotals = {
    mess: 0,
    info: 0,
    local: 0,
    remote: 0,
    bytes: 0,
    oldest: 0,
    oldestUncached: 0,
  };
  const fresh = new Map<number, CachedBucket>();
  for (let n = 0; n < layout.split; n++) {
    let p: BucketTotals;
    try {
      p = bucketTotals(layout.root, n, detail, detail ? cache?.buckets.get(n) : undefined, committed);
    } catch (err) {
      cache?.buckets.clear();
      throw err;
    }
    sum.mess += p.mess;
    sum.info += p.info;
    sum.local += p.local;
    sum.remote += p.remote;
    sum.bytes += p.bytes;
    sum.oldest = older(sum.oldest, p.oldest);
    sum.oldestUncached = older(sum.oldestUncached, p.oldestUncached);
    if (p.cached) fresh.set(n, p.cached);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (cache && detail) for (const [n, b] of fresh) cache.buckets.set(n, b);
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
    if (!splitDir && !e.name.startsWith(".") && e.isDirectory()) n += below(`${layout.root}/mess/${e.name}`);
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
  let t = await allBuckets(layout, detailed, cache, committedIds);
  if (cache && detailed) {
    if (fullPass) cache.fullPassAt = nowSeconds;
    const oldest = fullPass ? t.oldest : confirmedOldest(layout, cache);
    if (oldest === undefined) {
      // Many birth times changed since the cache was filled: count again from scratch.
      cache.buckets.clear();
      t = await allBuckets(layout, detailed, cache, committedIds);
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
