// Engine types -> the wire contract (@qmfleet/proto). The engine never sees generated code.

import type { QueueStats as WireQueueStats } from "@qmfleet/proto";
import type { QueueStats } from "../engine/model.js";

export function statsToWire(stats: QueueStats): WireQueueStats {
  return {
    messagesInQueue: stats.messagesInQueue,
    notPreprocessed: stats.notPreprocessed,
    preprocessed: stats.preprocessed,
    withLocal: stats.withLocal,
    withRemote: stats.withRemote,
    bouncing: stats.bouncing,
    beingWritten: stats.beingWritten,
    bytes: stats.bytes,
    oldestBirthUnix: stats.oldestBirth,
    oldestAgeSeconds: stats.oldestAgeSeconds,
  };
}
