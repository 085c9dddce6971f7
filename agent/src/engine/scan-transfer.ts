// What scan.ts and its worker threads (scan-worker.ts) say to each other. Messages between
// threads are copied (structured clone); copying a QueuedMessage object graph cost ~17 us a
// message measured here (8.6 to serialize, 8.6 to deserialize), more than reading half of it
// from disk. So results travel as one JSON string of flat arrays per chunk (~1 us each way)
// plus one transferred buffer holding the header blocks end to end (moved, never copied),
// and paths are computed again from the id on arrival.

import { messagePaths } from "./layout.js";
import type { MessageState, QueuedMessage, QueueLayout, Recipient } from "./model.js";
import { candidateOf, type ScanCandidate } from "./walk.js";

/** What a worker needs to read messages like the scanning thread would. */
export interface WorkerJob {
  layout: QueueLayout;
  headers: boolean;
  envelope: boolean;
  headBytes: number | undefined;
}

/** A slice of the walk, in walk order: ids of one listing. */
export interface WorkerChunk {
  type: "chunk";
  seq: number;
  /** "preprocessed" ids carry BucketListing flags; todo/intd ids none. */
  state: "preprocessed" | "todo" | "being-written";
  ids: string[];
  flags: number[];
  /**
   * Read the heads only and post them (a "heads" result), then wait for a "keep" verdict: the
   * selection's header criteria run in the scanning thread, the only one that may load re2.
   */
  headsFirst: boolean;
}

/** The scanning thread's verdict on a chunk's heads: 1 per head to finish, 0 to drop. */
export interface WorkerKeep {
  type: "keep";
  seq: number;
  keep: Uint8Array;
}

export type WorkerRequest = WorkerChunk | WorkerKeep;

export interface WorkerResult {
  seq: number;
  /** "heads": the header blocks of the chunk's readable messages only, for a WorkerKeep. */
  kind: "heads" | "candidates";
  /** JSON of one CompactMessage per candidate, or of the head ends for "heads". */
  json: string;
  /** The header blocks end to end, transferred. */
  heads: ArrayBuffer;
  /** A read failed: the QueueAccessError to throw in the scanning thread. */
  failure?: { message: string; path: string; code: string };
}

/**
 * A candidate as one flat array, strings and numbers only: id, fingerprint, state, birthTime,
 * size, sender, recipients (channel, address, stored, done 0/1 for each), from, to, cc, subject,
 * subjectRaw, date, messageId, clientIp, headEnd (end of its block in `heads`), headComplete
 * 0/1, bodyOffset.
 */
type CompactMessage = [
  string,
  string,
  MessageState,
  number,
  number,
  string,
  Array<string | number>,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  number,
  number,
  number,
];

function concatBlocks(blocks: Buffer[]): { heads: Uint8Array<ArrayBuffer>; ends: number[] } {
  let total = 0;
  for (const b of blocks) total += b.length;
  // A fresh ArrayBuffer (not a pooled Buffer slab) so that it can be transferred.
  const heads = new Uint8Array(total);
  const ends: number[] = [];
  let end = 0;
  for (const b of blocks) {
    heads.set(b, end);
    end += b.length;
    ends.push(end);
  }
  return { heads, ends };
}

/** Header blocks alone (the "heads" step of a headsFirst chunk). */
export function packHeads(seq: number, blocks: Buffer[]): WorkerResult {
  const { heads, ends } = concatBlocks(blocks);
  return { seq, kind: "heads", json: JSON.stringify(ends), heads: heads.buffer };
}

/** The header blocks of a "heads" result. */
export function unpackHeads(result: WorkerResult): Buffer[] {
  const all = Buffer.from(result.heads);
  let start = 0;
  return (JSON.parse(result.json) as number[]).map((end) => {
    const block = all.subarray(start, end);
    start = end;
    return block;
  });
}

export function packCandidates(seq: number, candidates: ScanCandidate[]): WorkerResult {
  const { heads, ends } = concatBlocks(candidates.map((c) => c.headBlock));
  const compact = candidates.map((c, i): CompactMessage => {
    const m = c.message;
    const h = m.headers;
    const rcpts: Array<string | number> = [];
    for (const r of m.recipients) rcpts.push(r.channel, r.address, r.stored, r.done ? 1 : 0);
    return [
      m.id,
      m.fingerprint,
      m.state,
      m.birthTime,
      m.size,
      m.sender,
      rcpts,
      h.from,
      h.to,
      h.cc,
      h.subject,
      h.subjectRaw,
      h.date,
      h.messageId,
      m.clientIp,
      ends[i] as number,
      c.headComplete ? 1 : 0,
      c.bodyOffset,
    ];
  });
  return { seq, kind: "candidates", json: JSON.stringify(compact), heads: heads.buffer };
}

export function unpackCandidates(layout: QueueLayout, result: WorkerResult): ScanCandidate[] {
  const heads = Buffer.from(result.heads);
  let start = 0;
  return (JSON.parse(result.json) as CompactMessage[]).map((m) => {
    const rcpts = m[6];
    const recipients: Recipient[] = [];
    for (let i = 0; i < rcpts.length; i += 4) {
      recipients.push({
        channel: rcpts[i] as "local" | "remote",
        address: rcpts[i + 1] as string,
        stored: rcpts[i + 2] as string,
        done: rcpts[i + 3] === 1,
      });
    }
    const message: QueuedMessage = {
      id: m[0],
      fingerprint: m[1],
      state: m[2],
      birthTime: m[3],
      size: m[4],
      sender: m[5],
      recipients,
      headers: {
        from: m[7],
        to: m[8],
        cc: m[9],
        subject: m[10],
        subjectRaw: m[11],
        date: m[12],
        messageId: m[13],
      },
      clientIp: m[14],
      bouncing: m[2] === "bouncing",
      paths: messagePaths(layout, m[0]),
    };
    const head = heads.subarray(start, m[15]);
    start = m[15];
    return candidateOf(layout.root, message, head, m[16] === 1, m[17]);
  });
}
