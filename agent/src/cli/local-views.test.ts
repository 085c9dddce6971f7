import assert from "node:assert/strict";
import { test } from "node:test";
import type { QueueStats } from "../engine/model.js";
import { statsJson, statsText } from "./local-views.js";

const counted: QueueStats = {
  messagesInQueue: 300_000,
  notPreprocessed: 2,
  preprocessed: 299_998,
  withLocal: 10,
  withRemote: 299_990,
  bouncing: 5,
  beingWritten: 0,
  bytes: 912_345_678,
  oldestBirth: 1_795_839_072,
  oldestAgeSeconds: 3 * 86400 + 7200,
  detailed: true,
};
// What queueStats returns above AUTO_DETAIL_LIMIT without --detail: zeros that are not counts.
const notCounted: QueueStats = { ...counted, bytes: 0, oldestBirth: 0, oldestAgeSeconds: 0, detailed: false };

test("-s says bytes and the oldest were not counted instead of printing zeros", () => {
  const text = statsText(notCounted);
  assert.match(text, /^messages in queue: 300000\nmessages in queue but not yet preprocessed: 2\n/);
  assert.match(text, /^bytes: not counted \(a big queue: --detail counts them\)$/m);
  assert.match(text, /^oldest: not counted/m);
  assert.deepEqual(
    { bytes: statsJson(notCounted).bytes, oldest: statsJson(notCounted).oldestBirth },
    { bytes: null, oldest: null },
  );
});

test("-s prints bytes and the oldest when counted", () => {
  const text = statsText(counted);
  assert.match(text, /^bytes: 912345678$/m);
  assert.match(text, /^oldest: .* GMT \(3d 2h ago\)$/m);
  assert.deepEqual(statsJson(counted), counted);
});
