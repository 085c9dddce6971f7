// Many queue files read in one call to the native reader (agent/native/queue_files.c): a scan
// reads three small files per message, and through node's fs.*Sync each open, read and close
// costs 3-4x the system call itself (bench/README.md). The asynchronous form runs on the
// reader's own thread, taking the batches in the order asked, so the reading of the next
// chunks overlaps the matching and decoding here.
//
// The semantics are readQueueFile's (queue-file.ts): a file gone (ENOENT), a symlink (ELOOP,
// never followed) or a directory (EISDIR) is "nothing to read", any other failure is an error
// naming the file and the fix.

import { constants } from "node:os";
import { queueAccessError } from "./layout.js";
import { errnoCode, native, nativeFailure, type RawBatch } from "./native.js";

/** What to read of each file of a batch. */
export interface BatchRequest {
  /** Relative to the queue root. */
  paths: string[];
  /** Bytes read from the start of each file; 0 reads them whole (EFBIG past WHOLE_FILE_MAX, queue-file.ts). */
  limit: number;
  /** The mtime is wanted (an fstat for every file). */
  mtime?: boolean;
  /** Keep of each file only its header block and the empty line after it (all it has when there is none). */
  headOnly?: boolean;
  /** With headOnly: the SHA-256 of each header block too, taken in the reader (FileBatch.digest). */
  digest?: boolean;
  /** With headOnly: where each header block has the fields a scan summarizes, found in the reader too (FileBatch.fields). */
  fields?: boolean;
}

// queue_files.c's flags.
const WANT_STAT = 1;
const HEAD_ONLY = 2;
const DIGEST = 4;
const FIELDS = 8;
/** head_digest.h's HEAD_DIGEST: the bytes of each digest the reader gives. */
const DIGEST_BYTES = 16;

const ABSENT = new Set([constants.errno.ENOENT, constants.errno.ELOOP, constants.errno.EISDIR]);

export interface QueueFileRead {
  /** The bytes read (up to the request's limit; with headOnly, up to the header block's end): a view of the batch's buffer. */
  data: Buffer;
  /** Size of the file; equal to data.length when it was read whole or was shorter than the limit. */
  size: number;
  /** Seconds since the epoch; 0 unless the request asked for it. */
  mtime: number;
}

/** The files of one request, in its order. */
export class FileBatch {
  private readonly offsets: number[];

  constructor(
    private readonly root: string,
    private readonly paths: string[],
    private readonly raw: RawBatch,
  ) {
    this.offsets = new Array(paths.length);
    let at = 0;
    for (let i = 0; i < paths.length; i++) {
      this.offsets[i] = at;
      at += raw.meta[i * 4 + 3] as number;
    }
  }

  /** File i, undefined when there is nothing to read there; throws QueueAccessError for any other failure. */
  file(i: number): QueueFileRead | undefined {
    if (!(i >= 0 && i < this.paths.length))
      throw new RangeError(`no file ${i} in a batch of ${this.paths.length}`);
    const m = this.raw.meta;
    const errno = m[i * 4] as number;
    if (errno !== 0) {
      if (ABSENT.has(errno)) return undefined;
      const abs = `${this.root}/${this.paths[i]}`;
      throw queueAccessError("read", abs, { code: errnoCode(errno) });
    }
    const start = this.offsets[i] as number;
    return {
      data: this.raw.data.subarray(start, start + (m[i * 4 + 3] as number)),
      size: m[i * 4 + 1] as number,
      mtime: m[i * 4 + 2] as number,
    };
  }

  /**
   * For a file read with `digest`: the first 32 hex digits of the SHA-256 of its header block
   * (cutHeaderBlock's block of its data), what fingerprintOfBlock would hash; undefined when the
   * reader could not take them (fingerprint.ts hashes then).
   */
  digest(i: number): string | undefined {
    return this.raw.digests?.toString("hex", i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
  }

  /**
   * For files read with `fields`: where each one's header block has the fields a scan
   * summarizes, file i's at i * HEAD_FIELD_INTS (headers.ts summarizeHeaders takes them);
   * undefined when the reader could not give them.
   */
  get fields(): Int32Array | undefined {
    return this.raw.fields;
  }
}

function nativeArgs(req: BatchRequest): [string, number, number, number] {
  const flags =
    (req.mtime ? WANT_STAT : 0) |
    (req.headOnly ? HEAD_ONLY : 0) |
    (req.digest ? DIGEST : 0) |
    (req.fields ? FIELDS : 0);
  return [req.paths.join("\0"), req.paths.length, req.limit, flags];
}

export function readBatchSync(root: string, req: BatchRequest): FileBatch {
  try {
    return new FileBatch(root, req.paths, native.readFilesSync(root, ...nativeArgs(req)));
  } catch (err) {
    throw nativeFailure("open", root, err);
  }
}

export async function readBatch(root: string, req: BatchRequest): Promise<FileBatch> {
  try {
    return new FileBatch(root, req.paths, await native.readFiles(root, ...nativeArgs(req)));
  } catch (err) {
    throw nativeFailure("open", root, err);
  }
}
