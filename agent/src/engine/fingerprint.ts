// Identity of a message beyond its id. The id is the inode number of the mess file and the file
// system gives it to the next message once this one is gone (qmail-queue.md §2), so every
// change re-checks this fingerprint first. qmail-queue never rewrites mess after writing it,
// so its size and header block (which starts with qmail's own Received line, carrying the
// qmail-queue pid and the time) tell two messages apart, and cost one short read.

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { cutHeaderBlock } from "./headers.js";

// One-shot hashing came in node 20.12 (package.json's engines): an older node is named here,
// at load, rather than by a "not a function" at the first message.
if (typeof crypto.hash !== "function") {
  throw new Error(`qmfleet needs node 20.12 or later (crypto.hash); this is node ${process.version}`);
}

/** At most this much of the head is hashed: the header block, or this prefix when it has no end. */
export const FINGERPRINT_SPAN = 64 * 1024;

/**
 * `<size>:<sha256 of the header block, 32 hex digits>`. `head` is the start of the mess file
 * and must hold its header block, or min(size, FINGERPRINT_SPAN) bytes when there is no
 * blank line in that span.
 */
export function fingerprintOf(size: number, head: Buffer): string {
  const span = head.length > FINGERPRINT_SPAN ? head.subarray(0, FINGERPRINT_SPAN) : head;
  return fingerprintOfBlock(size, cutHeaderBlock(span).block);
}

/** fingerprintOf for a head already cut: cutHeaderBlock's block of at most FINGERPRINT_SPAN bytes (a scan has it cut). */
export function fingerprintOfBlock(size: number, block: Buffer): string {
  // One-shot: no Hash object a message.
  return fingerprintOfDigest(size, crypto.hash("sha256", block, "hex").slice(0, 32));
}

/** The fingerprint from the block's digest taken elsewhere (the native reader's, FileBatch.digest). */
export function fingerprintOfDigest(size: number, digestHex: string): string {
  return `${size}:${digestHex}`;
}

// O_NOATIME (Linux): reading a message must not refresh its atime, which qmail-send's cleanup
// of orphaned mess files relies on. Only the owner or root may use it; others get EPERM.
const NOATIME = fs.constants.O_NOATIME ?? 0;
// Queue files are never symlinks; one that is must not lead a root process elsewhere (ELOOP).
// O_NONBLOCK: a FIFO left among queue files must not hang the open (no effect on regular files).
const READ = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | fs.constants.O_NONBLOCK;
let noatimeAllowed = NOATIME !== 0;

/** Opens a queue file read-only, never through a symlink or blocking on a FIFO, without touching its atime where the kernel lets us. */
export function openNoAtime(file: string): number {
  if (noatimeAllowed) {
    try {
      return fs.openSync(file, READ | NOATIME);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPERM") throw err;
      noatimeAllowed = false;
    }
  }
  return fs.openSync(file, READ);
}

export interface MessageHead {
  /** Size of the whole mess file. */
  size: number;
  head: Buffer;
}

/**
 * Reads from fd the start of a message until its blank line, up to `cap` bytes: `first` bytes
 * at once (most header blocks are a few KiB), more only when needed. A short first read is the
 * end of the file and gives the size without an fstat (one syscall less per message). The head
 * returned holds the header block and its blank line, or all that was read when there is none.
 */
export function readHead(fd: number, first: number, cap = FINGERPRINT_SPAN): MessageHead {
  // First read into a reused buffer, then keep a copy of just the header block and its blank
  // line: a scan then allocates ~2 KB per message instead of `first` bytes.
  if (firstRead.length < first) firstRead = Buffer.allocUnsafe(first);
  let got = fs.readSync(fd, firstRead, 0, first, 0);
  const size = got < first ? got : fs.fstatSync(fd).size;
  const cut = cutHeaderBlock(firstRead.subarray(0, got));
  if (cut.complete || got === size) {
    const keep = cut.complete ? Math.min(got, cut.block.length + 2) : got;
    return { size, head: Buffer.from(firstRead.subarray(0, keep)) };
  }
  let want = first;
  let buf = Buffer.from(firstRead.subarray(0, got));
  while (got === want && want < Math.min(size, cap) && !cutHeaderBlock(buf.subarray(0, got)).complete) {
    want = Math.min(size, cap, want * 4);
    const bigger = Buffer.allocUnsafe(want);
    buf.copy(bigger, 0, 0, got);
    buf = bigger;
    got += fs.readSync(fd, buf, got, want - got, got);
  }
  return { size, head: got === buf.length ? buf : buf.subarray(0, got) };
}

let firstRead = Buffer.allocUnsafe(16 * 1024);

export interface FileFingerprint {
  fingerprint: string;
  size: number;
}

/**
 * Fingerprint of a mess file now, or undefined when it is gone (delivered meanwhile).
 * Purge calls this right before changing a message.
 */
export function fingerprintFile(messPath: string): FileFingerprint | undefined {
  let fd: number;
  try {
    fd = openNoAtime(messPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const { size, head } = readHead(fd, 16 * 1024);
    return { fingerprint: fingerprintOf(size, head), size };
  } finally {
    fs.closeSync(fd);
  }
}
