// The order of a sorted ListMessages, on the wire type, shared by the agent (which sorts one
// queue) and the controller (which merges the sorted streams of many hosts into one sorted
// stream): a k-way merge is right only if every host sorted with exactly the same comparison.
//
//   SORT_KEY_ID    by message id, numerically (ids are inode numbers, decimal strings beyond 2^53)
//   SORT_KEY_AGE   youngest first (the largest birth time first); descending: oldest first
//   SORT_KEY_SIZE  smallest first
// Ties are broken by id, so the order is total; `descending` reverses all of it.
//
// Sorting needs memory for the messages kept, so a sorted listing must say how many it wants
// (1..MAX_SORTED_LIMIT per host): the agent keeps the first N of the order while it scans,
// never a whole queue. An unsorted listing streams in scan order and needs no limit.
import { SortKey } from "./gen/qmfleet/v1/agent.js";
import type { MessageSummary } from "./gen/qmfleet/v1/queue.js";

/** The largest per-host limit a sorted listing may ask for. */
export const MAX_SORTED_LIMIT = 10_000;

export type MessageComparator = (a: MessageSummary, b: MessageSummary) => number;

/** Numeric order of two decimal ids without leading zeros (any length). */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

const id = (m: MessageSummary) => m.ref?.id ?? "";

const BY_KEY: Partial<Record<SortKey, MessageComparator>> = {
  [SortKey.SORT_KEY_ID]: () => 0,
  [SortKey.SORT_KEY_AGE]: (a, b) => b.birthTimeUnix - a.birthTimeUnix,
  [SortKey.SORT_KEY_SIZE]: (a, b) => a.size - b.size,
};

/** The comparison for a sort key, or undefined for UNSPECIFIED (scan order) and unknown keys. */
export function messageComparator(key: SortKey, descending: boolean): MessageComparator | undefined {
  const primary = BY_KEY[key];
  if (!primary) return undefined;
  const ascending: MessageComparator = (a, b) => primary(a, b) || compareIds(id(a), id(b));
  return descending ? (a, b) => ascending(b, a) : ascending;
}

/**
 * Why a sort and limit cannot be served, or undefined when they can. The same words on the
 * agent (INVALID_ARGUMENT) and in the CLI (before anything is asked of any host).
 */
export function sortLimitProblem(key: SortKey, limit: number): string | undefined {
  if (key === SortKey.SORT_KEY_UNSPECIFIED) return undefined;
  if (!BY_KEY[key]) return `unknown sort key ${key}: expected id, age or size`;
  if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_SORTED_LIMIT)) {
    return (
      `sorting needs a limit from 1 to ${MAX_SORTED_LIMIT} per host (got ${limit}): the agent keeps only the ` +
      "first N messages of the order in memory, never a whole queue; an unsorted listing streams without a limit"
    );
  }
  return undefined;
}
