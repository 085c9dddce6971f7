// Worker thread of scanQueue (scan.ts): reads the chunks of ids the scanning thread hands out,
// every message whole (head, envelope, header decoding, the selection), with the same Walker as
// the in-thread scan, and posts each chunk's candidates back packed (packCandidates). The
// scanning thread bounds how many chunks are out, so this thread needs no flow control.

import { parentPort, workerData } from "node:worker_threads";
import { QueueAccessError } from "./layout.js";
import {
  packCandidates,
  type ScanCandidate,
  Walker,
  type WorkerChunk,
  type WorkerJob,
  type WorkerResult,
} from "./scan.js";

const job = workerData as WorkerJob;
const port = parentPort;
if (!port) throw new Error("scan-worker.ts runs as a worker thread of scan.ts");

const walker = new Walker(job.layout, { headers: job.headers, headBytes: job.headBytes, select: job.select });

port.on("message", (chunk: WorkerChunk) => {
  let result: WorkerResult;
  try {
    const candidates: ScanCandidate[] = [];
    for (let i = 0; i < chunk.ids.length; i++) {
      const id = chunk.ids[i] as string;
      const c =
        chunk.state === "preprocessed"
          ? walker.preprocessed(id, chunk.flags[i] as number)
          : walker.queued(id, chunk.state);
      if (c) candidates.push(c);
    }
    result = packCandidates(chunk.seq, candidates);
  } catch (err) {
    // A QueueAccessError names the file and the fix: the scanning thread throws it again.
    if (!(err instanceof QueueAccessError)) throw err;
    result = { seq: chunk.seq, json: "[]", heads: new ArrayBuffer(0), failure: { message: err.message, path: err.path, code: err.code } };
  }
  port.postMessage(result, [result.heads]);
});
