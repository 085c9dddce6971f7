// sumStats here; fleetStats over real agents and mutual TLS is tested in test/src/e2e.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { QueueStats } from "@qmfleet/proto";
import { sumStats } from "./stats.js";

function stats(fields: Partial<QueueStats>): QueueStats {
  return {
    messagesInQueue: 0,
    notPreprocessed: 0,
    preprocessed: 0,
    withLocal: 0,
    withRemote: 0,
    bouncing: 0,
    beingWritten: 0,
    bytes: 0,
    oldestBirthUnix: 0,
    oldestAgeSeconds: 0,
    ...fields,
  };
}

describe("sumStats", () => {
  it("adds the counts and keeps the oldest message of any host", () => {
    const total = sumStats([
      stats({
        messagesInQueue: 10,
        notPreprocessed: 1,
        preprocessed: 9,
        withLocal: 3,
        withRemote: 7,
        bouncing: 2,
        beingWritten: 1,
        bytes: 1000,
        oldestBirthUnix: 1_700_000_500,
        oldestAgeSeconds: 500,
      }),
      stats({
        messagesInQueue: 5,
        notPreprocessed: 2,
        preprocessed: 3,
        withLocal: 1,
        withRemote: 2,
        bouncing: 0,
        beingWritten: 0,
        bytes: 300,
        oldestBirthUnix: 1_700_000_100,
        oldestAgeSeconds: 900,
      }),
    ]);
    assert.deepEqual(
      total,
      stats({
        messagesInQueue: 15,
        notPreprocessed: 3,
        preprocessed: 12,
        withLocal: 4,
        withRemote: 9,
        bouncing: 2,
        beingWritten: 1,
        bytes: 1300,
        oldestBirthUnix: 1_700_000_100,
        oldestAgeSeconds: 900,
      }),
    );
  });

  it("does not take an empty host's 0 birth time for the oldest message", () => {
    const total = sumStats([
      stats({}),
      stats({ messagesInQueue: 1, oldestBirthUnix: 1_700_000_000, oldestAgeSeconds: 60 }),
    ]);
    assert.equal(total.oldestBirthUnix, 1_700_000_000);
    assert.equal(total.oldestAgeSeconds, 60);
  });

  it("is all zeros for no host", () => {
    assert.deepEqual(sumStats([]), stats({}));
  });
});
