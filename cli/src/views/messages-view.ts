// qmfleet -l/-L/-R (and every message a deletion would select, with --dry-run): one message per row,
// written as it arrives. Nothing here waits for the whole listing, so no format can hold a
// fleet's worth of messages: the table has fixed column widths (wide characters counted as two
// columns), and the JSON document writes its messages first and the hosts' states, known only
// at the end, after them.

import type { HostOutcome } from "@qmfleet/controller";
import { Channel, MessageState, type MessageSummary } from "@qmfleet/proto";
import { hostJson } from "../actions/host-report.js";
import type { OutputFormat } from "../render.js";
import { renderCsvRow, renderNdjsonLine } from "../render.js";
import { fitWidth, oneLine, padStartWidth } from "../text-width.js";
import { formatAge } from "./stats-view.js";

const STATES: Record<number, string> = {
  [MessageState.MESSAGE_STATE_PREPROCESSED]: "preprocessed",
  [MessageState.MESSAGE_STATE_TODO]: "todo",
  [MessageState.MESSAGE_STATE_BOUNCING]: "bouncing",
  [MessageState.MESSAGE_STATE_BEING_WRITTEN]: "being-written",
};

export function stateName(state: MessageState): string {
  return STATES[state] ?? "unknown";
}

/** One message as the JSON, NDJSON and CSV outputs show it: host first, subject decoded. */
export interface MessageRecord {
  host: string;
  id: string;
  fingerprint: string;
  state: string;
  birthTime: number;
  ageSeconds: number;
  size: number;
  /** "" is the null sender <>. */
  sender: string;
  recipients: { channel: string; address: string; stored?: string; done: boolean }[];
  subject: string;
  subjectRaw: string;
  from: string;
  to: string;
  cc: string;
  date: string;
  messageId: string;
  clientIp: string;
  bouncing: boolean;
}

export function messageRecord(host: string, m: MessageSummary, now: number): MessageRecord {
  const h = m.headers;
  return {
    host,
    id: m.ref?.id ?? "",
    fingerprint: m.ref?.fingerprint ?? "",
    state: stateName(m.state),
    birthTime: m.birthTimeUnix,
    ageSeconds: Math.max(0, now - m.birthTimeUnix),
    size: m.size,
    sender: m.sender,
    recipients: m.recipients.map((r) => ({
      channel: r.channel === Channel.CHANNEL_LOCAL ? "local" : "remote",
      address: r.address,
      ...(r.storedAddress !== r.address ? { stored: r.storedAddress } : {}),
      done: r.done,
    })),
    subject: h?.subject ?? "",
    subjectRaw: h?.subjectRaw ?? "",
    from: h?.from ?? "",
    to: h?.to ?? "",
    cc: h?.cc ?? "",
    date: h?.date ?? "",
    messageId: h?.messageId ?? "",
    clientIp: m.clientIp,
    bouncing: m.bouncing,
  };
}

export interface ListTotals {
  count: number;
  bytes: number;
}

/** What a deletion preview adds to a listing. */
export interface DryRun {
  /** The selection as the operator can read it back (describeFilter). */
  filter: string;
  /** The command that deletes what it lists. */
  command: string;
}

export interface ListViewOptions {
  format: OutputFormat;
  /** -N: HOST:ID per line, nothing else. */
  numbers: boolean;
  /** Names of the targeted hosts (the host column is as wide as the longest). */
  hostNames: readonly string[];
  now: number;
  dryRun?: DryRun;
}

/** A listing written piece by piece: begin, each message, each host's end, then the end. */
export interface ListView {
  begin(): string;
  message(host: string, m: MessageSummary): string;
  host(outcome: HostOutcome<unknown>): string;
  end(hosts: readonly HostOutcome<unknown>[], totals: ListTotals): string;
}

const CSV_HEADER = [
  "host",
  "id",
  "fingerprint",
  "state",
  "birthTime",
  "ageSeconds",
  "size",
  "sender",
  "recipients",
  "subject",
  "from",
  "clientIp",
  "bouncing",
];

function csvRow(r: MessageRecord): (string | number)[] {
  return [
    r.host,
    r.id,
    r.fingerprint,
    r.state,
    r.birthTime,
    r.ageSeconds,
    r.size,
    r.sender,
    r.recipients.map((x) => x.address).join(" "),
    r.subject,
    r.from,
    r.clientIp,
    String(r.bouncing),
  ];
}

// Fixed widths: a streamed table cannot measure rows it has not seen. Ids are inode numbers
// (usually 7-10 digits); a longer one widens its own row only.
const ID_WIDTH = 10;
const AGE_WIDTH = 7;
const SIZE_WIDTH = 8;
const SENDER_WIDTH = 28;
const RECIPIENT_WIDTH = 28;
const SUBJECT_WIDTH = 50;

function firstRecipient(m: MessageSummary): string {
  const [first] = m.recipients;
  if (!first) return "";
  return m.recipients.length > 1 ? `${first.address} +${m.recipients.length - 1}` : first.address;
}

function okCount(hosts: readonly HostOutcome<unknown>[]): string {
  return `${hosts.filter((h) => h.state === "ok").length}/${hosts.length} hosts answered`;
}

function tableView(options: ListViewOptions): ListView {
  const hostWidth = Math.max(4, ...options.hostNames.map((n) => n.length));
  const row = (cells: [string, string, string, string, string, string, string]) =>
    [
      fitWidth(cells[0], hostWidth),
      cells[1].padStart(ID_WIDTH),
      padStartWidth(cells[2], AGE_WIDTH),
      padStartWidth(cells[3], SIZE_WIDTH),
      fitWidth(cells[4], SENDER_WIDTH),
      fitWidth(cells[5], RECIPIENT_WIDTH),
      fitWidth(cells[6], SUBJECT_WIDTH),
    ]
      .join("  ")
      .trimEnd();
  const dry = options.dryRun;
  return {
    begin: () =>
      (dry ? `Dry run: messages matching ${dry.filter} (nothing is deleted)\n` : "") +
      `${row(["host", "id", "age", "size", "sender", "first recipient", "subject"])}\n`,
    message: (host, m) =>
      `${row([
        host,
        m.ref?.id ?? "",
        formatAge(options.now - m.birthTimeUnix),
        String(m.size),
        m.sender === "" ? "<>" : oneLine(m.sender),
        oneLine(firstRecipient(m)),
        oneLine(m.headers?.subject ?? ""),
      ])}\n`,
    host: () => "",
    end: (hosts, totals) =>
      dry
        ? `Would delete ${totals.count} messages (${totals.bytes} bytes); ${okCount(hosts)}. Nothing was deleted ` +
          "(messages still being written by qmail-queue are never selected). To delete what matches then:\n" +
          `  ${dry.command}\n`
        : `${totals.count} messages (${totals.bytes} bytes); ${okCount(hosts)}\n`,
  };
}

function jsonView(options: ListViewOptions): ListView {
  let first = true;
  const dry = options.dryRun;
  return {
    begin: () => `{${dry ? `"dryRun":true,"filter":${JSON.stringify(dry.filter)},` : ""}"messages":[`,
    message: (host, m) => {
      const text = `${first ? "\n" : ",\n"}${JSON.stringify(messageRecord(host, m, options.now))}`;
      first = false;
      return text;
    },
    host: () => "",
    end: (hosts, totals) =>
      `${first ? "" : "\n"}],\n"hosts":${JSON.stringify(hosts.map(hostJson))},\n` +
      `"count":${totals.count},"bytes":${totals.bytes}${dry ? `,"command":${JSON.stringify(dry.command)}` : ""}}\n`,
  };
}

function ndjsonView(options: ListViewOptions): ListView {
  return {
    begin: () => "",
    message: (host, m) => renderNdjsonLine({ kind: "message", ...messageRecord(host, m, options.now) }),
    host: (outcome) => renderNdjsonLine({ kind: "host", ...hostJson(outcome) }),
    end: (hosts, totals) =>
      renderNdjsonLine({
        kind: "total",
        ...(options.dryRun
          ? { dryRun: true, filter: options.dryRun.filter, command: options.dryRun.command }
          : {}),
        count: totals.count,
        bytes: totals.bytes,
        hosts: hosts.length,
        notOk: hosts.filter((h) => h.state !== "ok").length,
      }),
  };
}

function csvView(options: ListViewOptions): ListView {
  return {
    begin: () => renderCsvRow(CSV_HEADER),
    message: (host, m) => renderCsvRow(csvRow(messageRecord(host, m, options.now))),
    host: () => "",
    end: () => "",
  };
}

function numbersView(): ListView {
  return {
    begin: () => "",
    // HOST:ID, what -m takes: ids alone are ambiguous across hosts.
    message: (host, m) => `${host}:${m.ref?.id ?? ""}\n`,
    host: () => "",
    end: () => "",
  };
}

export function listView(options: ListViewOptions): ListView {
  if (options.numbers) return numbersView();
  switch (options.format) {
    case "table":
      return tableView(options);
    case "json":
      return jsonView(options);
    case "ndjson":
      return ndjsonView(options);
    case "csv":
      return csvView(options);
  }
}
