// Worker thread of scanQueue (scan.ts): walks its share of the split directories with the
// same Walker as the in-thread scan and posts the candidates in batches, waiting for credits
// so that no more than MAX_IN_FLIGHT batches wait unconsumed in the main thread.

import { parentPort, workerData } from "node:worker_threads";
import { Walker, type WorkerBatch, type WorkerJob } from "./scan.js";

const BATCH = 256;
const MAX_IN_FLIGHT = 8;

const job = workerData as WorkerJob;
const port = parentPort;
if (!port) throw new Error("scan-worker.ts runs as a worker thread of scan.ts");

let credits = MAX_IN_FLIGHT;
let wake: (() => void) | undefined;
port.on("message", () => {
  credits++;
  wake?.();
});

async function send(batch: WorkerBatch): Promise<void> {
  while (credits === 0) {
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
  }
  credits--;
  port?.postMessage(batch);
}

const walker = new Walker(job.layout, { headers: job.headers, headBytes: job.headBytes });
for (const bucket of job.buckets) {
  let items: WorkerBatch["items"] = [];
  for (const c of walker.buckets([bucket])) {
    // A copy of exactly the block's bytes: a Buffer view would clone its whole pool slab.
    items.push({
      message: c.message,
      headBlock: new Uint8Array(c.headBlock),
      headComplete: c.headComplete,
      bodyOffset: c.bodyOffset,
    });
    if (items.length === BATCH) {
      await send({ bucket, items, last: false });
      items = [];
    }
  }
  await send({ bucket, items, last: true });
}
// Done: the main thread terminates this worker once it has taken every batch.
