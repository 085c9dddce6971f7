// Engine types -> the wire contract (@qmfleet/proto), in one place. The engine never sees
// generated code; handlers call these and nothing else to build responses.

import {
  type MessageDetail,
  type MessageSummary,
  type SummarizeResponse,
  Channel as WireChannel,
  GroupBy as WireGroupBy,
  type QueueProblem as WireQueueProblem,
  type QueueStats as WireQueueStats,
  MessageState as WireState,
} from "@qmfleet/proto";
import type { QueueProblem } from "../engine/check.js";
import type { Channel, MessageState, QueuedMessage, QueueStats } from "../engine/model.js";
import type { OpenedMessage } from "../engine/show.js";
import type { GroupBy, Summary } from "../engine/summarize.js";

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

const CHANNEL: Record<Channel, WireChannel> = {
  local: WireChannel.CHANNEL_LOCAL,
  remote: WireChannel.CHANNEL_REMOTE,
};

const STATE: Record<MessageState, WireState> = {
  preprocessed: WireState.MESSAGE_STATE_PREPROCESSED,
  todo: WireState.MESSAGE_STATE_TODO,
  bouncing: WireState.MESSAGE_STATE_BOUNCING,
  "being-written": WireState.MESSAGE_STATE_BEING_WRITTEN,
};

export function messageToWire(m: QueuedMessage): MessageSummary {
  return {
    ref: { id: m.id, fingerprint: m.fingerprint },
    state: STATE[m.state],
    birthTimeUnix: m.birthTime,
    size: m.size,
    sender: m.sender,
    recipients: m.recipients.map((r) => ({
      channel: CHANNEL[r.channel],
      address: r.address,
      storedAddress: r.stored,
      done: r.done,
    })),
    headers: { ...m.headers },
    clientIp: m.clientIp,
    bouncing: m.bouncing,
  };
}

const GROUP_BY_FROM_WIRE = new Map<WireGroupBy, GroupBy>([
  [WireGroupBy.GROUP_BY_SENDER, "sender"],
  [WireGroupBy.GROUP_BY_RECIPIENT_DOMAIN, "recipientDomain"],
  [WireGroupBy.GROUP_BY_SUBJECT, "subject"],
  [WireGroupBy.GROUP_BY_CLIENT_IP, "clientIp"],
]);
const GROUP_BY_TO_WIRE = new Map([...GROUP_BY_FROM_WIRE].map(([wire, by]) => [by, wire]));

/** The engine's dimension for a wire one; undefined for UNSPECIFIED or an unknown number. */
export function groupByFromWire(by: WireGroupBy): GroupBy | undefined {
  return GROUP_BY_FROM_WIRE.get(by);
}

export function summaryToWire(summary: Summary): SummarizeResponse {
  return {
    groups: summary.groups.map((g) => ({
      by: GROUP_BY_TO_WIRE.get(g.by) ?? WireGroupBy.GROUP_BY_UNSPECIFIED,
      key: g.key,
      count: g.count,
      bytes: g.bytes,
    })),
    ...(summary.shape
      ? {
          shape: {
            bucketLabels: [...summary.shape.bucketLabels],
            rows: summary.shape.rows.map((r) => ({
              domain: r.domain,
              total: r.total,
              counts: [...r.counts],
            })),
          },
        }
      : {}),
    matched: summary.matched,
    matchedBytes: summary.matchedBytes,
  };
}

export function problemToWire(problem: QueueProblem): WireQueueProblem {
  return { kind: problem.kind, path: problem.path, id: problem.id, detail: problem.detail };
}

/** The detail part of ReadMessage; the text preview is the first readable part, cut at previewChars. */
export function detailToWire(opened: OpenedMessage, previewChars: number): MessageDetail {
  const text = opened.texts[0]?.text ?? "";
  // Never cut between the two halves of a surrogate pair (an emoji, a rare kanji).
  const cut = /[\ud800-\udbff]/.test(text.charAt(previewChars - 1)) ? previewChars - 1 : previewChars;
  return {
    summary: messageToWire(opened.message),
    headers: opened.headers.map((h) => ({ name: h.name, raw: h.raw, decoded: h.decoded })),
    parts: opened.parts.map((p) => ({
      path: p.path,
      contentType: p.contentType,
      charset: p.charset,
      transferEncoding: p.transferEncoding,
      filename: p.filename,
      size: p.size,
    })),
    textPreview: text.length > previewChars ? text.slice(0, cut) : text,
  };
}
