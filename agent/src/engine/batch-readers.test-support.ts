// For the tests of the native reader (batch-read.test.ts, head-fields.test.ts): a batch read
// every way the agent reads one. Not part of the built agent (tsconfig.build.json leaves
// *.test-support.ts out).
import { type BatchRequest, type FileBatch, readBatch, readBatchSync } from "./batch-read.js";
import { native } from "./native.js";

/** readBatchSync with the io_uring fast path turned off: every file through the plain calls. */
export function readBatchPlain(root: string, req: BatchRequest): FileBatch {
  const was = native.useIoUring(false);
  try {
    return readBatchSync(root, req);
  } finally {
    native.useIoUring(was);
  }
}

/** Both readers and the plain calls, each in its own batch, labelled. */
export async function eachReader(root: string, req: BatchRequest): Promise<[string, FileBatch][]> {
  return [
    ["readBatchSync", readBatchSync(root, req)],
    ["readBatch", await readBatch(root, req)],
    ["readBatchSync, plain calls", readBatchPlain(root, req)],
  ];
}
