// Engine types -> the wire contract (@qmfleet/proto), in one place. The engine never sees
// generated code; handlers call these and nothing else to build responses.

import {
  type MessageDetail,
  type MessageSummary,
  type SummarizeResponse,
  Channel as WireChannel,
  GroupBy as WireGroupBy,
  type MessageOutcome as WireMessageOutcome,
  Outcome as WireOutcome,
  type PlanSummary as WirePlanSummary,
  PurgeMode as WirePurgeMode,
  type PurgeReport as WirePurgeReport,
  type QuarantineEntry as WireQuarantineEntry,
  type QueueProblem as WireQueueProblem,
  type QueueStats as WireQueueStats,
  type Recipient as WireRecipient,
  MessageState as WireState,
} from "@qmfleet/proto";
import type { QueueProblem } from "../engine/check.js";
import type { Channel, MessageState, QueuedMessage, QueueStats, Recipient } from "../engine/model.js";
import type { PlanSummary, PurgeMode } from "../engine/plan.js";
import type { PurgeReport } from "../engine/purge.js";
import type { MessageOutcome, OutcomeKind } from "../engine/purge-target.js";
import type { QuarantineEntry } from "../engine/quarantine.js";
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

function recipientToWire(r: Recipient): WireRecipient {
  return { channel: CHANNEL[r.channel], address: r.address, storedAddress: r.stored, done: r.done };
}

export function messageToWire(m: QueuedMessage): MessageSummary {
  return {
    ref: { id: m.id, fingerprint: m.fingerprint },
    state: STATE[m.state],
    birthTimeUnix: m.birthTime,
    size: m.size,
    sender: m.sender,
    recipients: m.recipients.map(recipientToWire),
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

const MODE: Record<PurgeMode, WirePurgeMode> = {
  live: WirePurgeMode.PURGE_MODE_LIVE,
  stopped: WirePurgeMode.PURGE_MODE_STOPPED,
};

/** The mode a preview asks for; "auto" for UNSPECIFIED, undefined for a number that names no mode. */
export function purgeModeFromWire(mode: WirePurgeMode): PurgeMode | "auto" | undefined {
  if (mode === WirePurgeMode.PURGE_MODE_UNSPECIFIED) return "auto";
  return (Object.keys(MODE) as PurgeMode[]).find((m) => MODE[m] === mode);
}

export function planSummaryToWire(plan: PlanSummary): WirePlanSummary {
  return {
    planId: plan.planId,
    expiresUnix: plan.expiresAt,
    queueId: plan.queueId,
    mode: MODE[plan.mode],
    matched: plan.matched,
    bytes: plan.bytes,
    sample: plan.sample.map(messageToWire),
    todo: plan.todo,
    quarantine: plan.quarantine,
    beingWrittenSkipped: plan.beingWrittenSkipped,
  };
}

const OUTCOME: Record<OutcomeKind, WireOutcome> = {
  neutralized: WireOutcome.OUTCOME_NEUTRALIZED,
  retired: WireOutcome.OUTCOME_RETIRED,
  removed: WireOutcome.OUTCOME_REMOVED,
  skipped_changed: WireOutcome.OUTCOME_SKIPPED_CHANGED,
  gone: WireOutcome.OUTCOME_GONE,
  failed: WireOutcome.OUTCOME_FAILED,
};

export function outcomeToWire(o: MessageOutcome): WireMessageOutcome {
  return {
    ref: { id: o.id, fingerprint: o.fingerprint },
    outcome: OUTCOME[o.outcome],
    error: o.error ?? "",
    touched: [...o.touched],
    quarantineId: o.quarantineId ?? "",
  };
}

export function purgeReportToWire(r: PurgeReport): WirePurgeReport {
  return {
    planId: r.planId,
    mode: MODE[r.mode],
    purged: r.purged,
    retired: r.retired,
    skippedChanged: r.skippedChanged,
    gone: r.gone,
    failed: r.failed,
    downtimeMs: r.downtimeMs,
    qmailSendRestarted: r.qmailSendRestarted,
    awaitingRetirement: r.awaitingRetirement,
    notProcessed: r.notProcessed,
    error: r.error ?? "",
    notes: [...r.notes],
  };
}

export function quarantineEntryToWire(e: QuarantineEntry): WireQuarantineEntry {
  return {
    quarantineId: e.quarantineId,
    originalId: e.originalId,
    sender: e.sender,
    recipients: e.recipients.map(recipientToWire),
    birthTimeUnix: e.birthTime,
    quarantinedAtUnix: e.quarantinedAt,
    planId: e.planId,
    reason: e.reason,
    size: e.size,
    subject: e.subject,
  };
}
