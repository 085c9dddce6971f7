// Reads the messages of a queue one at a time, only what a listing needs: the envelope files
// and the head of each mess file (never the whole message), so memory stays bounded whatever
// the queue size and a 50 MB message costs what a 2 KB one does. scan.ts drives it, in this
// thread or in worker threads (scan-worker.ts): this module must not load re2 (pattern.ts),
// whose addon crashes a process that loads it in a second thread (uhop/node-re2#235, seen here
// as "Check failed: node->IsInUse()"), so selections are passed in as plain functions.
//
// Order is qmail-qread's: info/0 .. info/<split-1> in readdir order (preprocessed messages),
// then todo/ (committed, not yet preprocessed), then intd/ entries without todo (being written).
//
// Cost: a message is ~10 syscalls (mess: open, read, close; info: open, fstat, read, close;
// remote and/or local: open, read, close; strace -c counted 10.1 per message on the mixed
// queue), and on the project's VM a syscall costs 2-8 us (open+close of a queue file: 7-10 us),
// so syscalls are most of a scan. Synchronous fs calls are 5-6x cheaper than fs/promises for
// many small files (toolchain.md). Per split dir, one listing of local/N and remote/N replaces
// a failing open per absent channel file (a thrown ENOENT costs ~10 us in node), and one
// listing of bounce/ replaces a stat per message. The mess head is read first, so a test on
// the raw header block skips the envelope reads of messages it rejects (3 syscalls instead of
// 10: then a search costs what grep does). Symlinks are never followed: entries must be
// regular files and every open uses O_NOFOLLOW.

import * as fs from "node:fs";
import { loadRouting, parseInfo, parseRecipients, parseTodo, type Routing } from "./envelope.js";
import { FINGERPRINT_SPAN, fingerprintOf, type MessageHead, openNoAtime, readHead } from "./fingerprint.js";
import { cutHeaderBlock, type HeaderBlockCut, summarizeHeaders } from "./headers.js";
import { isMessageName, messageFileNames, messagePaths, qmailHomeOf, splitOf, todoDirs } from "./layout.js";
import type {
  MessageHeaders,
  MessagePaths,
  MessageState,
  QueuedMessage,
  QueueLayout,
  Recipient,
} from "./model.js";
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
}

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
  return readQueueFile(abs, (fd) => {
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
  });
}

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

export class Walker {
  private readonly root: string;
  private readonly headBytes: number;
  private readonly decode: boolean;
  private readonly envelope: boolean;
  private readonly routing: Routing;
  private readonly headTest: ((headBlock: Buffer) => boolean) | undefined;
  private readonly accept: ((candidate: ScanCandidate) => boolean) | undefined;
  private bouncing: Set<string> | undefined;

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
  }

  /** Ids in bounce/ (read once per walk: one listing instead of a stat per message). */
  bouncingIds(): Set<string> {
    this.bouncing ??= new Set(messageNames(this.root, "bounce"));
    return this.bouncing;
  }

  /**
   * Every message in walk order: its candidate, or undefined for one skipped (gone meanwhile,
   * no mess, rejected by the selection). Skips are yielded too so that the caller can give the
   * event loop a turn while a selection rejects message after message (scan.ts paced).
   */
  *all(): Generator<ScanCandidate | undefined> {
    for (const bucket of this.bucketListings()) {
      for (let i = 0; i < bucket.ids.length; i++) {
        yield this.preprocessed(bucket.ids[i] as string, bucket.flags[i] as number);
      }
    }
    for (const { ids, state } of this.pendingListings()) {
      for (const id of ids) yield this.queued(id, state);
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
          (local.has(id) ? HAS_LOCAL : 0) |
            (remote.has(id) ? HAS_REMOTE : 0) |
            (bouncing.has(id) ? BOUNCING : 0),
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

  /** These ids, as all() does: undefined for each one skipped. */
  *some(ids: Iterable<string>): Generator<ScanCandidate | undefined> {
    for (const id of ids) {
      if (!isMessageName(id)) continue;
      const p = messagePaths(this.layout, id);
      yield this.preprocessed(id, HAS_LOCAL | HAS_REMOTE | (this.bouncingIds().has(id) ? BOUNCING : 0)) ??
        (exists(`${this.root}/${p.todo}`) ? this.queued(id, "todo") : undefined) ??
        this.queued(id, "being-written");
    }
  }

  /** A preprocessed message; `flags` say which channel files exist and whether it is bouncing. */
  preprocessed(id: string, flags: number): ScanCandidate | undefined {
    const head = this.head(id);
    return head && this.passes(head) ? this.finishPreprocessed(head, flags) : undefined;
  }

  /** A message of todo/ or intd/. */
  queued(id: string, state: "todo" | "being-written"): ScanCandidate | undefined {
    const head = this.head(id);
    return head && this.passes(head) ? this.finishQueued(head, state) : undefined;
  }

  /**
   * The head of mess/N/<id>, undefined when there is none (finished meanwhile, an orphan, a
   * symlink). Read first: a head test that rejects it spares the envelope reads (3 syscalls a
   * message instead of 10, what makes a header search as cheap as grep) and all decoding.
   */
  head(id: string): ReadHead | undefined {
    const paths = messagePaths(this.layout, id);
    const mess = readMess(`${this.root}/${paths.mess}`, this.headBytes);
    return mess && { id, paths, mess, cut: cutHeaderBlock(mess.head) };
  }

  private passes(head: ReadHead): boolean {
    return !this.headTest || this.headTest(head.cut.block);
  }

  finishPreprocessed(head: ReadHead, flags: number): ScanCandidate | undefined {
    const { paths } = head;
    const bouncing = (flags & BOUNCING) !== 0;
    const state = bouncing ? "bouncing" : "preprocessed";
    if (!this.envelope)
      return this.candidate(head, { state, birthTime: 0, sender: "", recipients: [], bouncing });
    const info = readSmall(`${this.root}/${paths.info}`, true);
    if (!info) return undefined;
    const { sender } = parseInfo(info.data);
    const recipients: Recipient[] = [];
    if (flags & HAS_LOCAL) this.channel(`${this.root}/${paths.local}`, "local", recipients);
    if (flags & HAS_REMOTE) this.channel(`${this.root}/${paths.remote}`, "remote", recipients);
    return this.candidate(head, { state, birthTime: info.mtime, sender, recipients, bouncing });
  }

  private channel(abs: string, channel: "local" | "remote", into: Recipient[]): void {
    const file = readSmall(abs, false);
    if (file) into.push(...parseRecipients(file.data, channel, this.routing.vdoms).recipients);
  }

  finishQueued(head: ReadHead, state: "todo" | "being-written"): ScanCandidate | undefined {
    const { paths } = head;
    // qmail-send writes info before it unlinks intd and todo: with info there, the message
    // is preprocessed and was listed as such.
    if (exists(`${this.root}/${paths.info}`)) return undefined;
    if (!this.envelope)
      return this.candidate(head, { state, birthTime: 0, sender: "", recipients: [], bouncing: false });
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
    return this.candidate(head, {
      state,
      birthTime: file.mtime,
      sender: todo.sender,
      recipients,
      bouncing: false,
    });
  }

  private candidate({ id, paths, mess, cut }: ReadHead, envelope: Envelope): ScanCandidate | undefined {
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
    return this.accept && !this.accept(c) ? undefined : c;
  }
}

/** A mess head read, waiting for its envelope (Walker.head). */
export interface ReadHead {
  id: string;
  paths: MessagePaths;
  mess: MessageHead;
  cut: HeaderBlockCut;
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
