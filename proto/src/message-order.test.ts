import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SortKey } from "./gen/qmfleet/v1/agent.js";
import { MessageState, type MessageSummary } from "./gen/qmfleet/v1/queue.js";
import { compareIds, MAX_SORTED_LIMIT, messageComparator, sortLimitProblem } from "./message-order.js";

function summary(id: string, birthTimeUnix: number, size: number): MessageSummary {
  return {
    ref: { id, fingerprint: `${size}:0` },
    state: MessageState.MESSAGE_STATE_PREPROCESSED,
    birthTimeUnix,
    size,
    sender: "",
    recipients: [],
    clientIp: "",
    bouncing: false,
  };
}

const list = [
  summary("900", 1000, 50),
  summary("18446744073709551615", 3000, 10),
  summary("1000", 2000, 50),
  summary("95", 3000, 70),
];
const ids = (sorted: MessageSummary[]) => sorted.map((m) => m.ref?.id);

function sortedBy(key: SortKey, descending: boolean): MessageSummary[] {
  const compare = messageComparator(key, descending);
  assert.ok(compare);
  return [...list].sort(compare);
}

describe("messageComparator", () => {
  it("orders ids numerically, also beyond 2^53", () => {
    assert.deepEqual(ids(sortedBy(SortKey.SORT_KEY_ID, false)), [
      "95",
      "900",
      "1000",
      "18446744073709551615",
    ]);
    assert.ok(compareIds("9007199254740993", "9007199254740992") > 0);
  });

  it("orders by age youngest first, ties by id; descending is the exact reverse", () => {
    const ascending = ids(sortedBy(SortKey.SORT_KEY_AGE, false));
    assert.deepEqual(ascending, ["95", "18446744073709551615", "1000", "900"]);
    assert.deepEqual(ids(sortedBy(SortKey.SORT_KEY_AGE, true)), [...ascending].reverse());
  });

  it("orders by size smallest first, ties by id", () => {
    assert.deepEqual(ids(sortedBy(SortKey.SORT_KEY_SIZE, false)), [
      "18446744073709551615",
      "900",
      "1000",
      "95",
    ]);
  });

  it("has no order for UNSPECIFIED (scan order)", () => {
    assert.equal(messageComparator(SortKey.SORT_KEY_UNSPECIFIED, false), undefined);
  });
});

describe("sortLimitProblem", () => {
  it("accepts a sort with a limit up to the maximum, and no sort without one", () => {
    assert.equal(sortLimitProblem(SortKey.SORT_KEY_AGE, 1), undefined);
    assert.equal(sortLimitProblem(SortKey.SORT_KEY_SIZE, MAX_SORTED_LIMIT), undefined);
    assert.equal(sortLimitProblem(SortKey.SORT_KEY_UNSPECIFIED, 0), undefined);
  });

  it("refuses a sort without a limit, or above the maximum, saying why", () => {
    assert.match(
      String(sortLimitProblem(SortKey.SORT_KEY_AGE, 0)),
      /^sorting needs a limit from 1 to 10000 per host \(got 0\): the agent keeps only the first N/,
    );
    assert.match(String(sortLimitProblem(SortKey.SORT_KEY_ID, MAX_SORTED_LIMIT + 1)), /\(got 10001\)/);
    assert.match(String(sortLimitProblem(99 as SortKey, 10)), /^unknown sort key 99/);
  });
});
