// Worker thread of scanQueue (scan.ts): reads the chunks of ids the scanning thread hands out,
// every message whole (head, envelope, header decoding) with the same Walker as the in-thread
// scan, and posts each chunk's candidates back packed (scan-transfer.ts). A headsFirst chunk
// is read in two steps: the heads are posted, and only those the scanning thread keeps (its
// selection's header criteria passed) are finished. The scanning thread bounds how many chunks
// are out, so this thread needs no flow control. It must never import pattern.ts (re2): see walk.ts.

import { parentPort, workerData } from "node:worker_threads";
import { QueueAccessError } from "./layout.js";
import {
  packCandidates,
  packHeads,
  type WorkerChunk,
  type WorkerJob,
  type WorkerRequest,
  type WorkerResult,
} from "./scan-transfer.js";
import { type ReadHead, type ScanCandidate, Walker } from "./walk.js";

const job = workerData as WorkerJob;
const port = parentPort;
if (!port) throw new Error("scan-worker.ts runs as a worker thread of scan.ts");

const walker = new Walker(job.layout, {
  headers: job.headers,
  envelope: job.envelope,
  headBytes: job.headBytes,
});
/** headsFirst chunks waiting for their verdict: the heads read, with their flags. */
const waiting = new Map<number, { chunk: WorkerChunk; heads: Array<{ head: ReadHead; flags: number }> }>();

function finish(chunk: WorkerChunk, head: ReadHead, flags: number): ScanCandidate | undefined {
  return chunk.state === "preprocessed"
    ? walker.finishPreprocessed(head, flags)
    : walker.finishQueued(head, chunk.state);
}

function answer(request: WorkerRequest): WorkerResult {
  if (request.type === "keep") {
    const held = waiting.get(request.seq);
    if (!held) throw new Error(`scan worker: no chunk ${request.seq} waits for a verdict`);
    waiting.delete(request.seq);
    const candidates: ScanCandidate[] = [];
    held.heads.forEach(({ head, flags }, i) => {
      const c = request.keep[i] === 1 ? finish(held.chunk, head, flags) : undefined;
      if (c) candidates.push(c);
    });
    return packCandidates(request.seq, candidates);
  }
  const heads: Array<{ head: ReadHead; flags: number }> = [];
  const candidates: ScanCandidate[] = [];
  for (let i = 0; i < request.ids.length; i++) {
    const head = walker.head(request.ids[i] as string);
    if (!head) continue;
    const flags = request.flags[i] ?? 0;
    if (request.headsFirst) heads.push({ head, flags });
    else {
      const c = finish(request, head, flags);
      if (c) candidates.push(c);
    }
  }
  if (!request.headsFirst) return packCandidates(request.seq, candidates);
  waiting.set(request.seq, { chunk: request, heads });
  return packHeads(
    request.seq,
    heads.map((h) => h.head.cut.block),
  );
}

port.on("message", (request: WorkerRequest) => {
  let result: WorkerResult;
  try {
    result = answer(request);
  } catch (err) {
    // A QueueAccessError names the file and the fix: the scanning thread throws it again.
    if (!(err instanceof QueueAccessError)) throw err;
    const failure = { message: err.message, path: err.path, code: err.code };
    result = { seq: request.seq, kind: "candidates", json: "[]", heads: new ArrayBuffer(0), failure };
  }
  port.postMessage(result, [result.heads]);
});
