// The wire Filter (qmfleet.v1, a oneof per criterion) to the engine's Filter and back. A
// criterion arrives from another program, so its shape is checked here: exactly one test per
// criterion, enums that name something. Values (patterns, texts, ranges) are checked by
// compileFilter, the one place that knows what each test can run; both throw FilterError, which
// the server reports as INVALID_ARGUMENT.
import {
  Channel as WireChannel,
  type Criterion as WireCriterion,
  type Filter as WireFilter,
  MessageState as WireState,
} from "@qmfleet/proto/messages";
import { FilterError } from "./engine/filter.js";
import type {
  Channel,
  Criterion,
  CriterionKind,
  Filter,
  MessageState,
  PatternSpec,
  RangeSpec,
} from "./engine/model.js";

const CHANNEL_FROM_WIRE = new Map<WireChannel, Channel>([
  [WireChannel.CHANNEL_LOCAL, "local"],
  [WireChannel.CHANNEL_REMOTE, "remote"],
]);
const STATE_FROM_WIRE = new Map<WireState, MessageState>([
  [WireState.MESSAGE_STATE_PREPROCESSED, "preprocessed"],
  [WireState.MESSAGE_STATE_TODO, "todo"],
  [WireState.MESSAGE_STATE_BOUNCING, "bouncing"],
  [WireState.MESSAGE_STATE_BEING_WRITTEN, "being-written"],
]);

// The oneof members of qmfleet.v1.Criterion, with their proto names for error messages.
const ONEOF = {
  all: "all",
  ids: "ids",
  senderExact: "sender_exact",
  senderRegex: "sender_regex",
  subjectContains: "subject_contains",
  headerRegex: "header_regex",
  bodyRegex: "body_regex",
  toCcContains: "to_cc_contains",
  toCcRegex: "to_cc_regex",
  recipientRegex: "recipient_regex",
  recipientDomain: "recipient_domain",
  ageSeconds: "age_seconds",
  sizeBytes: "size_bytes",
  channel: "channel",
  state: "state",
} as const satisfies Record<keyof Omit<WireCriterion, "negate">, string>;

type Member = keyof typeof ONEOF;
const MEMBERS = Object.keys(ONEOF) as Member[];

function kindFromWire(c: WireCriterion, member: Member, where: string): CriterionKind {
  switch (member) {
    case "all":
      if (c.all !== true) throw new FilterError(`${where}: all is false (leave the criterion out instead)`);
      return { kind: "all" };
    case "ids":
      return { kind: "ids", ids: [...(c.ids?.ids ?? [])] };
    case "senderExact":
      return { kind: "senderExact", sender: c.senderExact ?? "" };
    case "senderRegex":
      return { kind: "senderRegex", pattern: patternFromWire(c.senderRegex) };
    case "subjectContains":
      return { kind: "subjectContains", text: c.subjectContains ?? "" };
    case "headerRegex":
      return { kind: "headerRegex", pattern: patternFromWire(c.headerRegex) };
    case "bodyRegex":
      return { kind: "bodyRegex", pattern: patternFromWire(c.bodyRegex) };
    case "toCcContains":
      return { kind: "toCcContains", text: c.toCcContains ?? "" };
    case "toCcRegex":
      return { kind: "toCcRegex", pattern: patternFromWire(c.toCcRegex) };
    case "recipientRegex":
      return { kind: "recipientRegex", pattern: patternFromWire(c.recipientRegex) };
    case "recipientDomain":
      return { kind: "recipientDomain", domain: c.recipientDomain ?? "" };
    case "ageSeconds":
      return { kind: "ageSeconds", range: rangeFromWire(c.ageSeconds) };
    case "sizeBytes":
      return { kind: "sizeBytes", range: rangeFromWire(c.sizeBytes) };
    case "channel": {
      const channel = CHANNEL_FROM_WIRE.get(c.channel as WireChannel);
      if (!channel) throw new FilterError(`${where}: channel must be CHANNEL_LOCAL or CHANNEL_REMOTE`);
      return { kind: "channel", channel };
    }
    case "state": {
      const state = STATE_FROM_WIRE.get(c.state as WireState);
      if (!state) throw new FilterError(`${where}: state must be a MESSAGE_STATE other than UNSPECIFIED`);
      return { kind: "state", state };
    }
  }
}

function patternFromWire(pattern: { source: string; caseInsensitive: boolean } | undefined): PatternSpec {
  return { source: pattern?.source ?? "", caseInsensitive: pattern?.caseInsensitive ?? false };
}

function rangeFromWire(range: { min?: number | undefined; max?: number | undefined } | undefined): RangeSpec {
  return {
    ...(range?.min !== undefined ? { min: range.min } : {}),
    ...(range?.max !== undefined ? { max: range.max } : {}),
  };
}

/** The engine's Filter for a wire Filter; throws FilterError naming the criterion that is malformed. */
export function filterFromWire(filter: WireFilter): Filter {
  const criteria = filter.criteria.map((c, i): Criterion => {
    const where = `invalid filter, criterion ${i + 1}`;
    const set = MEMBERS.filter((member) => c[member] !== undefined);
    if (set.length === 0) {
      throw new FilterError(`${where} is empty: it must set one of ${Object.values(ONEOF).join(", ")}`);
    }
    if (set.length > 1) {
      throw new FilterError(
        `${where} sets ${set.map((m) => ONEOF[m]).join(" and ")}: one test per criterion`,
      );
    }
    const kind = kindFromWire(c, set[0] as Member, where);
    return c.negate ? { ...kind, negate: true } : kind;
  });
  return { criteria };
}

const CHANNEL_TO_WIRE: Record<Channel, WireChannel> = {
  local: WireChannel.CHANNEL_LOCAL,
  remote: WireChannel.CHANNEL_REMOTE,
};
const STATE_TO_WIRE: Record<MessageState, WireState> = {
  preprocessed: WireState.MESSAGE_STATE_PREPROCESSED,
  todo: WireState.MESSAGE_STATE_TODO,
  bouncing: WireState.MESSAGE_STATE_BOUNCING,
  "being-written": WireState.MESSAGE_STATE_BEING_WRITTEN,
};

function criterionToWire(c: Criterion): WireCriterion {
  const negate = c.negate ?? false;
  switch (c.kind) {
    case "all":
      return { negate, all: true };
    case "ids":
      return { negate, ids: { ids: [...c.ids] } };
    case "senderExact":
      return { negate, senderExact: c.sender };
    case "senderRegex":
      return { negate, senderRegex: { ...c.pattern } };
    case "subjectContains":
      return { negate, subjectContains: c.text };
    case "headerRegex":
      return { negate, headerRegex: { ...c.pattern } };
    case "bodyRegex":
      return { negate, bodyRegex: { ...c.pattern } };
    case "toCcContains":
      return { negate, toCcContains: c.text };
    case "toCcRegex":
      return { negate, toCcRegex: { ...c.pattern } };
    case "recipientRegex":
      return { negate, recipientRegex: { ...c.pattern } };
    case "recipientDomain":
      return { negate, recipientDomain: c.domain };
    case "ageSeconds":
      return { negate, ageSeconds: { ...c.range } };
    case "sizeBytes":
      return { negate, sizeBytes: { ...c.range } };
    case "channel":
      return { negate, channel: CHANNEL_TO_WIRE[c.channel] };
    case "state":
      return { negate, state: STATE_TO_WIRE[c.state] };
  }
}

/** The wire Filter for an engine Filter (for a plan that records what it previewed). */
export function filterToWire(filter: Filter): WireFilter {
  return { criteria: filter.criteria.map(criterionToWire) };
}
