// One message as an operator asks to see it (qmHandle -m, the ReadMessage RPC): its envelope,
// its header fields decoded, its MIME outline and text, then its raw bytes. Everything after the
// envelope comes from ONE open descriptor of the mess file, whose fingerprint is taken from that
// descriptor: ids are inode numbers and get reused (qmail-queue.md §2), so re-opening the file by
// name for the raw bytes could show another message than the one checked. An open descriptor
// keeps its inode even when qmail-clean unlinks the file meanwhile.
import * as fs from "node:fs";
import { type BodyText, bodyTexts, DEFAULT_BODY_CAP_BYTES } from "./body.js";
import { fingerprintOf, openNoAtime, readHead } from "./fingerprint.js";
import { cutHeaderBlock, type HeaderField, listHeaderFields } from "./headers.js";
import { isMessageName, queueAccessError } from "./layout.js";
import { type MimePart, walkMime } from "./mime.js";
import type { QueuedMessage, QueueLayout } from "./model.js";
import { scanQueueSync } from "./scan.js";

/** The id asked for is no message id at all. */
export class MessageIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MessageIdError";
  }
}

/** No message with that id is in the queue (delivered meanwhile, or a wrong id). */
export class MessageNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MessageNotFoundError";
  }
}

/** The id now names another message than the fingerprint given: the id was reused. */
export class FingerprintMismatchError extends Error {
  constructor(
    message: string,
    readonly current: string,
  ) {
    super(message);
    this.name = "FingerprintMismatchError";
  }
}

export interface ShowOptions {
  /** The fingerprint the caller listed; refused when the message's differs. Empty: any. */
  fingerprint?: string;
  /** Body bytes read for the MIME outline and texts (default DEFAULT_BODY_CAP_BYTES). */
  bodyCapBytes?: number;
}

export interface OpenedMessage {
  message: QueuedMessage;
  /** Every header field in file order, decoded. */
  headers: HeaderField[];
  /** MIME outline of the first bodyCapBytes of the body. */
  parts: MimePart[];
  /** Readable texts of those parts. */
  texts: BodyText[];
  /** The raw message from its first byte, in chunks, up to maxBytes (0: all of it). */
  chunks(maxBytes: number, chunkBytes?: number): Generator<Buffer>;
  /** Closes the descriptor; chunks() cannot be used after. */
  close(): void;
}

const RAW_CHUNK = 64 * 1024;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

function notFound(layout: QueueLayout, id: string): MessageNotFoundError {
  return new MessageNotFoundError(
    `no message ${id} in ${layout.root} (delivered or removed meanwhile, or a wrong id: list the queue again)`,
  );
}

/**
 * Opens message `id` for showing. Throws MessageIdError for a malformed id,
 * MessageNotFoundError when it is not queued, FingerprintMismatchError when
 * `opts.fingerprint` is given and the message under that id is another one.
 */
export function openMessage(layout: QueueLayout, id: string, opts: ShowOptions = {}): OpenedMessage {
  if (!isMessageName(id)) {
    throw new MessageIdError(`"${id}" is not a message id (the decimal number a listing shows)`);
  }
  const bodyCap = opts.bodyCapBytes ?? DEFAULT_BODY_CAP_BYTES;
  const [candidate] = scanQueueSync(layout, { ids: [id] });
  if (!candidate) throw notFound(layout, id);
  const messAbs = `${layout.root}/${candidate.message.paths.mess}`;
  let fd: number;
  try {
    fd = openNoAtime(messAbs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw notFound(layout, id);
    throw queueAccessError("read", messAbs, err);
  }
  try {
    const { size, head } = readHead(fd, 16 * 1024);
    const fingerprint = fingerprintOf(size, head);
    const wanted = opts.fingerprint ?? "";
    if (wanted !== "" && wanted !== fingerprint) {
      throw new FingerprintMismatchError(
        `message ${id} is not the message you listed: its fingerprint is ${fingerprint}, not ${wanted}. ` +
          "Ids are inode numbers and the file system gives them to new messages: list the queue again",
        fingerprint,
      );
    }
    if (fingerprint !== candidate.message.fingerprint) {
      // The file under this name changed between the envelope read and this open: the message
      // left the queue and a new one took its id, just now. Its envelope is not this file's.
      throw notFound(layout, id);
    }
    const cut = cutHeaderBlock(head);
    const bodyOffset = cut.complete ? cut.block.length + (head[cut.block.length] === 0x0d ? 2 : 1) : size;
    // One byte past the cap tells whether the body goes on.
    const read = readAt(fd, bodyOffset, Math.max(0, Math.min(bodyCap + 1, size - bodyOffset)));
    const truncated = read.length > bodyCap;
    const body = truncated ? read.subarray(0, bodyCap) : read;
    let open = true;
    return {
      message: candidate.message,
      headers: listHeaderFields(cut.block),
      parts: walkMime(cut.block, body, truncated),
      texts: bodyTexts(cut.block, body, truncated),
      *chunks(maxBytes, chunkBytes = RAW_CHUNK) {
        const end = maxBytes > 0 ? Math.min(size, maxBytes) : size;
        for (let pos = 0; pos < end; ) {
          if (!open) throw new Error(`message ${id} was closed while its raw bytes were read`);
          const chunk = readAt(fd, pos, Math.min(chunkBytes, end - pos));
          if (chunk.length === 0) return;
          pos += chunk.length;
          yield chunk;
        }
      },
      close() {
        if (open) {
          open = false;
          fs.closeSync(fd);
        }
      },
    };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}
