// The agent's native addon (agent/native, built by node-gyp in the package's build script): the
// queue work that is mostly system calls, where node's per-call cost was 3-4x the call itself
// (bench/README.md). queue_files.c reads batches of queue files (batch-read.ts); queue_dirs.c
// lists and lstats the split directories for the statistics (stats.ts). Every decision about
// what the results mean stays in TypeScript.

import { createRequire } from "node:module";
import { constants } from "node:os";
import { isMessageName, queueAccessError } from "./layout.js";

export interface RawBatch {
  data: Buffer;
  /** Per path: errno, size, mtime, byte count (see queue_files.c). */
  meta: Float64Array;
  /** With the DIGEST flag, per path: 16 bytes of the SHA-256 of its header block (head_digest.c); absent when not to be had. */
  digests?: Buffer;
  /** With the FIELDS flag, per path: headers.ts HEAD_FIELD_INTS numbers (head_fields.h); absent when not to be had. */
  fields?: Int32Array;
}

/** A directory as queue_dirs.c lists it. */
export interface DirListing {
  /** Every entry but . and .., of any type. */
  count: number;
  /** Regular files named by a safe integer in plain decimal, in readdir order. */
  ids: Float64Array;
  /** Other regular files whose names are digits only (too long, leading zero). */
  odd: string[];
  /** Names of the directories (never through a symlink). */
  dirs: string[];
}

interface NativeAddon {
  /** paths: `count` paths joined by NUL characters (one string crosses into C far cheaper than an array). */
  readFiles(root: string, paths: string, count: number, limit: number, flags: number): Promise<RawBatch>;
  readFilesSync(root: string, paths: string, count: number, limit: number, flags: number): RawBatch;
  /** null when the directory does not exist. */
  listDir(abs: string): DirListing | null;
  /** listDir on libuv's thread pool. */
  listDirAsync(abs: string): Promise<DirListing | null>;
  /** "io_uring", or "plain (why not)": how this thread's readFiles calls read (queue_uring.c). */
  readerKind(): string;
  /** Turns readFiles' io_uring fast path on or off (QMFLEET_IO_URING=0 at load: off); returns whether it was on. */
  useIoUring(on: boolean): boolean;
  /** Turns the native header-block digests on or off (tests); returns whether they were on. */
  useDigests(on: boolean): boolean;
  /** Per id: lstat size and mtime in seconds of abs/<id>, -1 and -1 when absent. */
  statIds(abs: string, ids: Float64Array): Float64Array;
  /**
   * Of info/n's plain ids, those in split dir n (id % split === n), in order, with per id 1 | 2 | 4
   * when it is in local, remote, bouncing (sorted plain ids: MessageNameSet.plain).
   */
  splitDirMessages(
    ids: Float64Array,
    split: number,
    n: number,
    local: Float64Array,
    remote: Float64Array,
    bouncing: Float64Array,
  ): { ids: Float64Array; flags: Uint8Array };
}

// The path is the same from src/engine (tests) and dist/engine (the built agent).
const ADDON = "../../native/build/Release/queue_files.node";

function load(): NativeAddon {
  try {
    return createRequire(import.meta.url)(ADDON) as NativeAddon;
  } catch (err) {
    throw new Error(
      `qmfleet-agent's native queue reader (${new URL(ADDON, import.meta.url).pathname}) cannot be loaded: ${(err as Error).message.split("\n")[0]}. Build it: npm run build in agent/ (node-gyp needs make, gcc and python3)`,
    );
  }
}

export const native = load();

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** ENOENT for 2: the addon reports errno numbers (strerrorname_np needs glibc 2.32, older mail servers run older ones). */
export function errnoCode(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** An addon failure (an Error with `errno`) as the QueueAccessError naming `path`; anything else as is. */
export function nativeFailure(op: string, path: string, err: unknown): Error {
  const errno = (err as { errno?: unknown }).errno;
  return typeof errno === "number" ? queueAccessError(op, path, { code: errnoCode(errno) }) : (err as Error);
}

/** A directory's listing, undefined when it does not exist; any other failure is a QueueAccessError naming it. */
export function listDirectory(abs: string): DirListing | undefined {
  try {
    return native.listDir(abs) ?? undefined;
  } catch (err) {
    throw nativeFailure("read", abs, err);
  }
}

/** listDirectory on libuv's thread pool. */
export async function listDirectoryAsync(abs: string): Promise<DirListing | undefined> {
  try {
    return (await native.listDirAsync(abs)) ?? undefined;
  } catch (err) {
    throw nativeFailure("read", abs, err);
  }
}

/**
 * Names of the regular files with message names in a directory (none when it does not exist),
 * in readdir order, names that are no number's plain form (a leading zero) after the others.
 * Through the addon: node's Dir made a Dirent object an entry, ~1.5 us each (bench/README.md).
 */
export function messageFileNames(abs: string): string[] {
  const listing = listDirectory(abs);
  if (!listing) return [];
  const names = Array.from(listing.ids, (id) => String(id));
  for (const name of listing.odd) if (isMessageName(name)) names.push(name);
  return names;
}

/**
 * The message names of a directory (as messageFileNames lists them), for membership tests: the
 * plain ones as numbers, sorted in a typed array (searched by halves), which the walk hands to
 * native.splitDirMessages to tell of each of a split dir's messages whether it has a local/N or
 * remote/N file and whether it bounces, building no string for any of them. Not a Set: a split
 * dir's sets live while the walk reads the dir, and a Set's thousands of entries were copied by
 * each young-generation collection meanwhile, and then promoted (bench/README.md).
 */
export class MessageNameSet {
  /** The plain names as numbers, sorted (for native.splitDirMessages). */
  readonly plain: Float64Array;
  private readonly odd: Set<string>;

  constructor(listing: DirListing | undefined) {
    this.plain = listing ? listing.ids.slice().sort() : new Float64Array(0);
    this.odd = new Set(listing?.odd.filter(isMessageName));
  }

  static of(abs: string): MessageNameSet {
    return new MessageNameSet(listDirectory(abs));
  }

  /** For an id from a listing's `ids`. */
  hasPlain(id: number): boolean {
    const sorted = this.plain;
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((sorted[middle] as number) < id) low = middle + 1;
      else high = middle;
    }
    return low < sorted.length && sorted[low] === id;
  }

  /** For any name: a plain one (as queue_dirs.c tells them: 15 digits at most, no leading zero) as its number. */
  has(name: string): boolean {
    const n = Number(name);
    return name.length <= 15 && String(n) === name ? this.hasPlain(n) : this.odd.has(name);
  }
}
