// The messages a read request selects: its wire Filter checked and compiled once, then the queue
// scanned with the caller's cancellation honoured between messages, so a client that hangs up
// (or whose deadline passes) stops the scan, also while nothing matches and nothing is sent.

import { status } from "@grpc/grpc-js";
import type { Filter as WireFilter } from "@qmfleet/proto";
import { type CompiledFilter, compileFilter } from "../engine/filter.js";
import type { QueuedMessage, QueueLayout } from "../engine/model.js";
import { scanQueue } from "../engine/scan.js";
import { filterFromWire } from "../filter-wire.js";
import { RpcError } from "./rpc-error.js";

/**
 * Compiles a request's filter; FilterError (bad pattern, malformed criterion) reaches the caller
 * as INVALID_ARGUMENT. An absent or empty filter is refused rather than run: it selects nothing
 * by the contract, and an operator reading "0 messages" would believe the queue empty.
 */
export function compileRequestFilter(
  method: string,
  filter: WireFilter | undefined,
  now: number,
): CompiledFilter {
  if (!filter || filter.criteria.length === 0) {
    throw new RpcError(
      status.INVALID_ARGUMENT,
      `${method} needs a filter: an empty one selects nothing (send the criterion \`all\`, qmHandle's -D, for every message)`,
    );
  }
  return compileFilter(filterFromWire(filter), now);
}

export function cancelled(method: string): RpcError {
  return new RpcError(status.CANCELLED, `${method} was cancelled by the client`);
}

/** The queue's messages that pass `filter`, in scan order; throws CANCELLED once `signal` aborts. */
export async function* selectedMessages(
  method: string,
  layout: QueueLayout,
  filter: CompiledFilter,
  signal: AbortSignal,
): AsyncGenerator<QueuedMessage> {
  for await (const candidate of scanQueue(layout)) {
    if (signal.aborted) throw cancelled(method);
    if (filter.matches(candidate)) yield candidate.message;
  }
}
