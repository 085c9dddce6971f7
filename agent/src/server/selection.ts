// The messages a read request selects: its wire Filter checked and compiled once, then the queue
// scanned with the caller's cancellation honoured between messages, so a client that hangs up
// (or whose deadline passes) stops the scan, also while nothing matches and nothing is sent.

import { status } from "@grpc/grpc-js";
import type { Filter as WireFilter } from "@qmfleet/proto";
import { compileFilter } from "../engine/filter.js";
import type { QueuedMessage, QueueLayout } from "../engine/model.js";
import { type ScanSelection, scanQueue } from "../engine/scan.js";
import { filterFromWire } from "../filter-wire.js";
import { RpcError } from "./rpc-error.js";

/**
 * A request's filter as the selection a scan applies, compiled once here so that FilterError
 * (bad pattern, malformed criterion) reaches the caller as INVALID_ARGUMENT before anything is
 * read. An absent or empty filter is refused rather than run: it selects nothing by the
 * contract, and an operator reading "0 messages" would believe the queue empty.
 */
export function requestSelection(method: string, filter: WireFilter | undefined, now: number): ScanSelection {
  if (!filter || filter.criteria.length === 0) {
    throw new RpcError(
      status.INVALID_ARGUMENT,
      `${method} needs a filter: an empty one selects nothing (send the criterion \`all\`, qmHandle's -D, for every message)`,
    );
  }
  const selection = { filter: filterFromWire(filter), now };
  compileFilter(selection.filter, now);
  return selection;
}

export function cancelled(method: string): RpcError {
  return new RpcError(status.CANCELLED, `${method} was cancelled by the client`);
}

/**
 * The queue's messages the selection selects, in scan order, chosen as the scan reads them (a
 * header criterion rejects a message before its envelope is read); throws CANCELLED once
 * `signal` aborts, also while nothing matches.
 */
export async function* selectedMessages(
  method: string,
  layout: QueueLayout,
  select: ScanSelection,
  signal: AbortSignal,
): AsyncGenerator<QueuedMessage> {
  try {
    for await (const candidate of scanQueue(layout, { select, signal })) {
      // The scan looks at the signal between slices; no message goes out after a cancel.
      signal.throwIfAborted();
      yield candidate.message;
    }
  } catch (error) {
    if (signal.aborted) throw cancelled(method);
    throw error;
  }
}
