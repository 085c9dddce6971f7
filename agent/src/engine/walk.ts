// Reads the messages of a queue, only what a listing needs: the envelope files and the head of
// each mess file (never the whole message), so memory stays bounded whatever the queue size and
// a 50 MB message costs what a 2 KB one does. scan.ts drives it.
//
// Order is qmail-qread's: info/0 .. info/<split-1> in readdir order (preprocessed messages),
// then todo/ (committed, not yet preprocessed), then intd/ entries without todo (being written).
//
// Messages are read in chunks, each file kind of a chunk in one call to the native reader
// (batch-read.ts): a message is ~10 system calls (mess: open, read, close; info: open, fstat,
// read, close; remote and/or local: open, read, close), and through node's fs.*Sync each one
// cost 3-4x the call itself. The heads come first, so a test on the raw header block skips the
// envelope reads of the messages it rejects. A chunk's reading is a coroutine (ChunkRead) that
// yields the batches it needs: readChunkSync reads them here and now, readChunk on the native
// reader's thread, where they overlap the decoding of the chunk before. The coroutine returns
// the chunk's decoding, not its candidates: a chunk read ahead holds the reader's buffers until
// its turn comes, and builds its candidates then. Per split dir, one listing of local/N and
// remote/N says which channel files exist, and one listing of bounce/ which messages bounce.
// The reader also hashes each head for the fingerprint where it can (FileBatch.digest), and
// finds the fields that summarizeHeaders decodes (FileBatch.fields).
// Symlinks are never followed (O_NOFOLLOW).

import * as fs from "node:fs";
import {
  type BatchRequest,
  type FileBatch,
  type QueueFileRead,
  readBatch,
  readBatchSync,
} from "./batch-read.js";
import { loadRouting, parseInfo, parseRecipients, parseTodo, type Routing } from "./envelope.js";
import {
  FINGERPRINT_SPAN,
  fingerprintOfBlock,
  fingerprintOfDigest,
  type MessageHead,
  openNoAtime,
  readHead,
} from "./fingerprint.js";
import {
  cutHeaderBlock,
  cutKeptHead,
  HEAD_FIELD_INTS,
  type HeaderBlockCut,
  summarizeHeaders,
} from "./headers.js";
import { isMessageName, messagePaths, qmailHomeOf, splitOf, todoDirs } from "./layout.js";
import type {
  MessageHeaders,
  MessagePaths,
  MessageState,
  QueuedMessage,
  QueueLayout,
  Recipient,
} from "./model.js";
import {
  type DirListing,
  listDirectory,
  listDirectoryAsync,
  MessageNameSet,
  messageFileNames,
  native,
} from "./native.js";
import { readQueueFile } from "./queue-file.js";

export interface WalkOptions {
  /** Decode From/To/Subject... and the client IP (default true). The head is read either way: it gives the fingerprint. */
  headers?: boolean;
  /**
   * Read the envelope files (default true). False: no info, local, remote or todo file is
   * opened, and sender, recipients and birthTime stay empty ("", [], 0); id, fingerprint,
   * size, state and the headers are still there (state from the directory listings). For
   * searches that only name messages (qmHandle -N): 3 syscalls a message instead of 10.
   */
  envelope?: boolean;
  /** Bytes read at first from each mess file; more (up to 64 KiB) only when the header block is longer. */
  headBytes?: number;
  /** Default: control/virtualdomains, control/locals beside the queue. */
  routing?: Routing;
  /** Called with each raw header block before anything else is read: false skips the message unread. */
  headTest?: (headBlock: Buffer) => boolean;
  /** Called with each whole candidate: false leaves it out. */
  accept?: (candidate: ScanCandidate) => boolean;
  /**
   * List split dir N+1 on libuv's pool when the walk reaches N (the pipelined scan): its
   * listings, ~1 ms a thousand messages of system time, then stay off the JavaScript thread.
   */
  listAhead?: boolean;
}

export interface ScanCandidate {
  message: QueuedMessage;
  /**
   * The header lines as in the file, without the blank line (capped at 64 KiB). A view of the
   * buffer the reader filled with the heads of the message's chunk (a few hundred messages):
   * not copied for each message, as no scan keeps it past the message; whoever keeps it keeps
   * that buffer, and should keep a copy instead.
   */
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

const EMPTY_HEADERS: Readonly<MessageHeaders> = Object.freeze({
  from: "",
  to: "",
  cc: "",
  subject: "",
  subjectRaw: "",
  date: "",
  messageId: "",
});

const DEFAULT_HEAD = 16 * 1024;

function messageNames(root: string, rel: string): string[] {
  return messageFileNames(`${root}/${rel}`);
}

function readMess(abs: string, headBytes: number): MessageHead | undefined {
  return readQueueFile(abs, (fd) => readHead(fd, headBytes));
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

/**
 * The reading of one chunk of messages as a coroutine: it yields the batches of files it needs
 * and is resumed with them read, so that one body serves the synchronous walk (readChunkSync)
 * and the pipelined one (readChunk). It returns the chunk's decoding (ChunkDecode).
 */
export type ChunkRead = Generator<BatchRequest[], ChunkDecode, FileBatch[]>;

/**
 * A chunk's files read, its candidates not yet built: called once, it gives per id the candidate
 * or undefined for a message skipped (gone meanwhile, no mess, rejected by the selection). The
 * pipelined scan calls it when the chunk's turn comes: candidates built as soon as their files
 * came would live through the young-generation collections of the chunks decoded before them,
 * each one copying them (bench/README.md).
 */
export type ChunkDecode = () => (ScanCandidate | undefined)[];

/** Runs a chunk's reading with synchronous reads, and decodes it. */
export function readChunkSync(root: string, chunk: ChunkRead): (ScanCandidate | undefined)[] {
  let step = chunk.next();
  while (!step.done) step = chunk.next(step.value.map((req) => readBatchSync(root, req)));
  return step.value();
}

/** Runs a chunk's reading with its batches read on the native reader's thread. */
export async function readChunk(root: string, chunk: ChunkRead): Promise<ChunkDecode> {
  let step = chunk.next();
  while (!step.done) step = chunk.next(await Promise.all(step.value.map((req) => readBatch(root, req))));
  return step.value;
}

/** Messages per chunk: each file kind of a chunk is one native call (~1-4 ms). */
const CHUNK = 256;

export class Walker {
  readonly root: string;
  private readonly headBytes: number;
  private readonly decode: boolean;
  private readonly envelope: boolean;
  private readonly routing: Routing;
  private readonly headTest: ((headBlock: Buffer) => boolean) | undefined;
  private readonly accept: ((candidate: ScanCandidate) => boolean) | undefined;
  private bouncing: MessageNameSet | undefined;
  private readonly listAhead: boolean;
  /** The listings of the next split dir, asked for ahead (listAhead); `listings` once they came. */
  private ahead: { n: number; listings?: (DirListing | undefined)[] } | undefined;

  constructor(
    private readonly layout: QueueLayout,
    opts: WalkOptions,
  ) {
    this.root = layout.root;
    this.headBytes = Math.min(opts.headBytes ?? DEFAULT_HEAD, FINGERPRINT_SPAN);
    this.decode = opts.headers ?? true;
    this.envelope = opts.envelope ?? true;
    this.routing = opts.routing ?? loadRouting(qmailHomeOf(layout));
    this.headTest = opts.headTest;
    this.accept = opts.accept;
    this.listAhead = opts.listAhead ?? false;
  }

  /** Ids in bounce/ (read once per walk: one listing instead of a stat per message). */
  private bouncingIds(): MessageNameSet {
    this.bouncing ??= MessageNameSet.of(`${this.root}/bounce`);
    return this.bouncing;
  }

  /** Every message in walk order, chunk by chunk; each directory is listed when the walk reaches it. */
  *chunks(): Generator<ChunkRead> {
    for (const dir of this.bucketListings()) {
      for (let i = 0; i < dir.ids.length; i += CHUNK) {
        yield this.preprocessed(
          Array.from(dir.ids.subarray(i, i + CHUNK), String),
          dir.flags.subarray(i, i + CHUNK),
        );
      }
      for (let i = 0; i < dir.odd.length; i += CHUNK) {
        yield this.preprocessed(dir.odd.slice(i, i + CHUNK), dir.oddFlags.subarray(i, i + CHUNK));
      }
    }
    for (const { ids, state } of this.pendingListings()) {
      for (let i = 0; i < ids.length; i += CHUNK) yield this.queued(ids.slice(i, i + CHUNK), state);
    }
  }

  /**
   * The preprocessed messages of each split dir, listed when the walk reaches it (or, with
   * listAhead, while it reads the dir before): one listing of info/N, local/N and remote/N per
   * dir replaces a failing open per absent channel file, and the bounce/ listing a stat per message.
   */
  private *bucketListings(): Generator<BucketListing> {
    const bouncing = this.bouncingIds();
    const { split } = this.layout;
    for (let n = 0; n < split; n++) {
      const [infos, localListing, remoteListing] = this.bucketListing(n);
      if (!infos) continue;
      const local = new MessageNameSet(localListing);
      const remote = new MessageNameSet(remoteListing);
      // A file in the wrong split dir is invisible to qmail-send (check.ts reports it): skipped.
      // Plain names first, in C, then the odd ones, as messageFileNames orders them.
      const { ids, flags } = native.splitDirMessages(
        infos.ids,
        split,
        n,
        local.plain,
        remote.plain,
        bouncing.plain,
      );
      const odd = infos.odd.filter((id) => isMessageName(id) && splitOf(this.layout, id) === n);
      const oddFlags = Uint8Array.from(
        odd,
        (id) =>
          (local.has(id) ? HAS_LOCAL : 0) |
          (remote.has(id) ? HAS_REMOTE : 0) |
          (bouncing.has(id) ? BOUNCING : 0),
      );
      if (ids.length + odd.length > 0) yield { ids, flags, odd, oddFlags };
    }
  }

  /**
   * The listings of info/N and, for the envelope reads (which channel files exist), of local/N
   * and remote/N: those asked for ahead when they came in time, else listed now (also when they
   * failed: the error is then thrown here, in walk order). With listAhead, asks for N+1's.
   */
  private bucketListing(n: number): (DirListing | undefined)[] {
    const dirs = (k: number) =>
      (this.envelope ? ["info", "local", "remote"] : ["info"]).map((kind) => `${this.root}/${kind}/${k}`);
    const ready = this.ahead?.n === n ? this.ahead.listings : undefined;
    if (this.listAhead && n + 1 < this.layout.split) {
      const next: { n: number; listings?: (DirListing | undefined)[] } = { n: n + 1 };
      this.ahead = next;
      Promise.all(dirs(n + 1).map(listDirectoryAsync)).then(
        (listings) => {
          next.listings = listings;
        },
        () => {},
      );
    }
    return ready ?? dirs(n).map(listDirectory);
  }

  /** Messages not yet preprocessed: todo/, then intd/ without todo. Listed after every info/N. */
  private *pendingListings(): Generator<PendingListing> {
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

  /** One message named by id (qmHandle -mN, a purge's re-check), in whichever state it is. */
  *one(id: string): ChunkRead {
    if (!isMessageName(id)) return () => [undefined];
    const flags = HAS_LOCAL | HAS_REMOTE | (this.bouncingIds().has(id) ? BOUNCING : 0);
    // Decoded at once: which state to look in next depends on it.
    const preprocessed = (yield* this.preprocessed([id], [flags]))();
    if (preprocessed[0]) return () => preprocessed;
    const todo = (yield* this.queued([id], "todo"))();
    return todo[0] ? () => todo : yield* this.queued([id], "being-written");
  }

  /** Preprocessed messages; `flags` say which channel files exist and whether each is bouncing. */
  private *preprocessed(ids: string[], flags: ArrayLike<number>): ChunkRead {
    const has = (i: number, flag: number) => ((flags[i] as number) & flag) !== 0;
    const {
      heads,
      files: [info, local, remote],
    } = yield* this.headsThen(
      ids,
      this.envelope
        ? [
            { path: (p) => p.info, limit: 0, mtime: true },
            { path: (p, i) => (has(i, HAS_LOCAL) ? p.local : undefined), limit: 0 },
            { path: (p, i) => (has(i, HAS_REMOTE) ? p.remote : undefined), limit: 0 },
          ]
        : [],
    );
    return () =>
      heads().map((head, i) => {
        if (!head) return undefined;
        const bouncing = has(i, BOUNCING);
        const envelope: Envelope = {
          state: bouncing ? "bouncing" : "preprocessed",
          birthTime: 0,
          sender: "",
          recipients: [],
          bouncing,
        };
        if (info && local && remote) {
          const infoFile = info(i);
          if (!infoFile) return undefined;
          envelope.birthTime = infoFile.mtime;
          envelope.sender = parseInfo(infoFile.data).sender;
          envelope.recipients = this.recipientsOf(local(i), remote(i));
        }
        return this.candidate(head, envelope);
      });
  }

  /** The recipients of a message's local and remote files (either may be absent), local ones first. */
  private recipientsOf(local: QueueFileRead | undefined, remote: QueueFileRead | undefined): Recipient[] {
    const { vdoms } = this.routing;
    const fromLocal = local ? parseRecipients(local.data, "local", vdoms).recipients : [];
    if (!remote) return fromLocal;
    const fromRemote = parseRecipients(remote.data, "remote", vdoms).recipients;
    return fromLocal.length === 0 ? fromRemote : fromLocal.concat(fromRemote);
  }

  /** Messages of todo/ or intd/. */
  private *queued(ids: string[], state: "todo" | "being-written"): ChunkRead {
    const {
      heads,
      files: [info, queued],
    } = yield* this.headsThen(ids, [
      { path: (p) => p.info, limit: 1 },
      { path: (p) => (state === "todo" ? p.todo : p.intd), limit: 0, mtime: true },
    ]);
    return () =>
      heads().map((head, i) => {
        // qmail-send writes info before it unlinks intd and todo: with info there, the message
        // is preprocessed and was listed as such.
        const file = head && !info?.(i) ? queued?.(i) : undefined;
        return file && this.candidate(head as ReadHead, this.queuedEnvelope(state, file));
      });
  }

  private queuedEnvelope(state: "todo" | "being-written", file: QueueFileRead): Envelope {
    if (!this.envelope) return { state, birthTime: 0, sender: "", recipients: [], bouncing: false };
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
  }

  /**
   * The heads of mess/N/<id> and the envelope files of `kinds` for each message read, as
   * accessors by message index; the heads as a function that cuts them when called (with a head
   * test, they are cut at once: the test decides which envelope files to read). A head is
   * undefined for a message there is none of (finished meanwhile, an orphan, a symlink) or that
   * the head test rejects: a rejected message costs its head read only (what makes a header
   * search as cheap as grep), no envelope read, no decoding. Without a head test every
   * message's envelope files are read anyway, so they are asked for with the heads, in one
   * round: the reader thread then never waits for this one to look at a chunk's heads before it
   * reads the chunk's envelope files.
   */
  private *headsThen(
    ids: string[],
    kinds: FileKind[],
  ): Generator<
    BatchRequest[],
    { heads: () => (ReadHead | undefined)[]; files: FileAccessor[] },
    FileBatch[]
  > {
    const paths = ids.map((id) => messagePaths(this.layout, id));
    // Every head's digest in the reader when every message is kept for its fingerprint; with a
    // head test (a search), only those of the few it keeps, here.
    const headRequest = {
      paths: paths.map((p) => p.mess),
      limit: this.headBytes,
      headOnly: true,
      digest: !this.headTest,
      fields: this.decode,
    };
    const plan = (indexes: number[]) => kinds.map((kind) => new KindPlan(kind, paths, indexes));
    if (!this.headTest && kinds.length > 0) {
      const plans = plan(paths.map((_, i) => i));
      const [messes, ...batches] = yield [headRequest, ...plans.map((p) => p.request)];
      return {
        heads: () => this.headsOf(ids, paths, messes as FileBatch),
        files: plans.map((p, k) => p.reader(batches[k])),
      };
    }
    const [messes] = yield [headRequest];
    const heads = this.headsOf(ids, paths, messes as FileBatch);
    const plans = plan(indexesOf(heads));
    const batches = plans.some((p) => p.request.paths.length > 0) ? yield plans.map((p) => p.request) : [];
    return { heads: () => heads, files: plans.map((p, k) => p.reader(batches[k])) };
  }

  private headsOf(ids: string[], paths: MessagePaths[], batch: FileBatch): (ReadHead | undefined)[] {
    return ids.map((id, i) => {
      const read = batch.file(i);
      const p = paths[i] as MessagePaths;
      const mess = read && this.messHead(p.mess, read);
      if (!mess || (this.headTest && !this.headTest(mess.cut.block))) return undefined;
      // The reader's digest and fields are of the block it kept: not of one read on here.
      const digest = mess.readOn ? undefined : batch.digest(i);
      const fields = mess.readOn ? undefined : batch.fields;
      return { id, paths: p, mess, cut: mess.cut, digest, fields, fieldsAt: i * HEAD_FIELD_INTS };
    });
  }

  /**
   * The head of a mess file from its first read: the header block and its blank line, as
   * readHead keeps it; readOn when the block went on past that read and was read here.
   */
  private messHead(
    rel: string,
    read: QueueFileRead,
  ): (MessageHead & { cut: HeaderBlockCut; readOn?: boolean }) | undefined {
    const { data, size } = read;
    // The reader stops a head at its empty line, so data is the whole head to keep (all read when there is none).
    const cut = cutKeptHead(data);
    if (cut.complete || data.length >= Math.min(size, FINGERPRINT_SPAN)) return { size, head: data, cut };
    // A header block longer than the first read (rare): read on as readHead does.
    const mess = readMess(`${this.root}/${rel}`, this.headBytes);
    return mess && { ...mess, cut: cutHeaderBlock(mess.head), readOn: true };
  }

  private candidate(
    { id, paths, mess, cut, digest, fields, fieldsAt }: ReadHead,
    envelope: Envelope | undefined,
  ): ScanCandidate | undefined {
    if (!envelope) return undefined;
    const summary = this.decode ? summarizeHeaders(cut.block, fields, fieldsAt) : undefined;
    // Each field named, not spread from the envelope: one object shape for every message.
    const message: QueuedMessage = {
      id,
      fingerprint:
        digest === undefined
          ? fingerprintOfBlock(mess.size, cut.block)
          : fingerprintOfDigest(mess.size, digest),
      state: envelope.state,
      birthTime: envelope.birthTime,
      sender: envelope.sender,
      recipients: envelope.recipients,
      bouncing: envelope.bouncing,
      size: mess.size,
      headers: summary ? summary.headers : { ...EMPTY_HEADERS },
      clientIp: summary ? summary.clientIp : "",
      paths,
    };
    const bodyOffset = cut.complete
      ? cut.block.length + (mess.head[cut.block.length] === 0x0d ? 2 : 1)
      : mess.size;
    const c = new Candidate(this.root, message, cut.block, cut.complete, bodyOffset);
    return this.accept && !this.accept(c) ? undefined : c;
  }
}

function indexesOf(items: unknown[]): number[] {
  const kept: number[] = [];
  items.forEach((item, i) => {
    if (item !== undefined) kept.push(i);
  });
  return kept;
}

/** One kind of envelope file a chunk reads: its path for message i, undefined when it has none. */
interface FileKind {
  path: (paths: MessagePaths, i: number) => string | undefined;
  limit: number;
  mtime?: boolean;
}

/** A kind's file of message i: undefined when not asked for or absent; throws as FileBatch.file. */
type FileAccessor = (i: number) => QueueFileRead | undefined;

/** The request for one FileKind's files of some of a chunk's messages, and where each one lands. */
class KindPlan {
  readonly request: BatchRequest;
  /** Per message of the chunk: its file's index in the request, -1 for none. */
  private readonly at: Int32Array;

  constructor(kind: FileKind, paths: MessagePaths[], indexes: number[]) {
    this.at = new Int32Array(paths.length).fill(-1);
    const files: string[] = [];
    for (const i of indexes) {
      const path = kind.path(paths[i] as MessagePaths, i);
      if (path === undefined) continue;
      this.at[i] = files.length;
      files.push(path);
    }
    this.request = { paths: files, limit: kind.limit, mtime: kind.mtime };
  }

  reader(batch: FileBatch | undefined): FileAccessor {
    return (i) => {
      const k = this.at[i] as number;
      return k === -1 || !batch ? undefined : batch.file(k);
    };
  }
}

/** A mess head read, waiting for its envelope (Walker.headsThen). */
interface ReadHead {
  id: string;
  paths: MessagePaths;
  mess: MessageHead;
  cut: HeaderBlockCut;
  /** The reader's digest of the header block (FileBatch.digest), when it took one. */
  digest: string | undefined;
  /** Where the reader found the block's fields (FileBatch.fields), from fieldsAt, when it did. */
  fields: Int32Array | undefined;
  fieldsAt: number;
}

/** BucketListing.flags bits (native.splitDirMessages gives the same). */
const HAS_LOCAL = 1;
const HAS_REMOTE = 2;
const BOUNCING = 4;

/** The preprocessed messages of one split dir, in readdir order: the plain names, then the odd ones. */
interface BucketListing {
  /** Plain names as numbers (a string each only once its chunk is read: see MessageNameSet). */
  ids: Float64Array;
  /** Per id: HAS_LOCAL | HAS_REMOTE | BOUNCING. */
  flags: Uint8Array;
  /** Names that are digits but no number's plain form (a leading zero), and their flags. */
  odd: string[];
  oddFlags: Uint8Array;
}

interface PendingListing {
  ids: string[];
  state: "todo" | "being-written";
}

/** A candidate from its parts: a class, not a literal with two closures a message. */
class Candidate implements ScanCandidate {
  constructor(
    private readonly root: string,
    readonly message: QueuedMessage,
    readonly headBlock: Buffer,
    readonly headComplete: boolean,
    readonly bodyOffset: number,
  ) {}

  readRaw(maxBytes: number): Buffer {
    return readAt(this.messAbs, 0, maxBytes);
  }

  readBody(maxBytes: number): Buffer {
    return readAt(this.messAbs, this.bodyOffset, maxBytes);
  }

  private get messAbs(): string {
    return `${this.root}/${this.message.paths.mess}`;
  }
}

interface Envelope {
  state: MessageState;
  birthTime: number;
  sender: string;
  recipients: Recipient[];
  bouncing: boolean;
}
