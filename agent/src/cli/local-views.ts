// What `qmfleet-agent local` prints: qmHandle's layouts for people (with decoded subjects) and
// one JSON shape per result for scripts. Pure functions from engine results to text.
//
// Everything shown comes from mail anyone can send, so text for a terminal goes through
// printable(): a Subject carrying ESC sequences must not be able to drive the operator's terminal.

import type { QueueProblem } from "../engine/check.js";
import type { QueuedMessage, QueueStats } from "../engine/model.js";
import { qreadDate } from "../engine/qread.js";
import type { OpenedMessage } from "../engine/show.js";
import { renderQstat } from "../engine/stats.js";
import type { Summary } from "../engine/summarize.js";

// C0 controls but tab and line feed, DEL, C1 controls: what a terminal may act on.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly what it must catch.
const TERMINAL_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** Text safe to print on a terminal: control characters shown as "?". */
export function printable(text: string): string {
  return text.replace(TERMINAL_CONTROL, "?");
}

const oneLine = (text: string) => printable(text.replace(/\r?\n/g, " "));

const BOLD = "\x1b[1m";
const CYAN = "\x1b[36m";
const RESET = "\x1b[0m";

/** "18/618770559" and "18" from mess/18/618770559: what qmHandle prints after an id. */
function messLocation(m: QueuedMessage): { dir: string; rel: string } {
  const rel = m.paths.mess.replace(/^mess\//, "");
  return { dir: rel.split("/", 1)[0] ?? "", rel };
}

/** qmHandle -l's block for one message, the Subject decoded. */
export function listingBlock(m: QueuedMessage, color: boolean): string {
  const { dir, rel } = messLocation(m);
  const head = `${m.id} (${dir}, ${rel})`;
  const label = (name: string) => (color ? `${CYAN}${name}${RESET}` : name);
  return (
    `${color ? `${BOLD}${head}${RESET}` : head}\n` +
    `  ${label("Return-path:")} <${oneLine(m.sender)}>\n` +
    `  ${label("From:")} ${oneLine(m.headers.from)}\n` +
    `  ${label("To:")} ${oneLine(m.headers.to)}\n` +
    `  ${label("Subject:")} ${oneLine(m.headers.subject)}\n` +
    `  ${label("Date:")} ${oneLine(m.headers.date)}\n` +
    `  ${label("Size:")} ${m.size} bytes\n`
  );
}

/** One message as JSON: the model flattened so that `subject` (decoded) sits beside `id` and `sender`. */
export function messageJson(m: QueuedMessage, now: number) {
  return {
    id: m.id,
    fingerprint: m.fingerprint,
    state: m.state,
    birthTime: m.birthTime,
    ageSeconds: Math.max(0, now - m.birthTime),
    size: m.size,
    sender: m.sender,
    recipients: m.recipients,
    subject: m.headers.subject,
    subjectRaw: m.headers.subjectRaw,
    from: m.headers.from,
    to: m.headers.to,
    cc: m.headers.cc,
    date: m.headers.date,
    messageId: m.headers.messageId,
    clientIp: m.clientIp,
    bouncing: m.bouncing,
    path: m.paths.mess,
  };
}

/** "3d 4h", "12m 5s": an age an operator reads at a glance. */
export function ageText(seconds: number): string {
  const units: [number, string][] = [
    [86400, "d"],
    [3600, "h"],
    [60, "m"],
    [1, "s"],
  ];
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [size, unit] of units) {
    if (rest >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

// Above AUTO_DETAIL_LIMIT messages bytes and ages are not counted unless asked for (stats.ts):
// say so rather than print a 0 an operator would believe.
const NOT_COUNTED = "not counted (a big queue: --detail counts them)";

/** qmail-qstat's two lines, byte for byte, then what qmail-qstat does not say. */
export function statsText(s: QueueStats): string {
  const counted = s.detailed !== false;
  const oldest = !counted
    ? NOT_COUNTED
    : s.oldestBirth === 0
      ? "-"
      : `${qreadDate(s.oldestBirth)} GMT (${ageText(s.oldestAgeSeconds)} ago)`;
  return (
    renderQstat(s) +
    `preprocessed: ${s.preprocessed}\n` +
    `with local recipients: ${s.withLocal}\n` +
    `with remote recipients: ${s.withRemote}\n` +
    `bouncing: ${s.bouncing}\n` +
    `being written: ${s.beingWritten}\n` +
    `bytes: ${counted ? s.bytes : NOT_COUNTED}\n` +
    `oldest: ${oldest}\n`
  );
}

/** -s --json: what was not counted is null, not 0. */
export function statsJson(s: QueueStats) {
  return s.detailed === false ? { ...s, bytes: null, oldestBirth: null, oldestAgeSeconds: null } : s;
}

/** What -m shows of a message (engine/show.ts opens it). */
export type ShownMessage = Pick<OpenedMessage, "message" | "headers" | "parts" | "texts">;

export function shownJson(shown: ShownMessage, now: number) {
  return {
    ...messageJson(shown.message, now),
    headers: shown.headers,
    parts: shown.parts.map((p) => ({
      path: p.path,
      contentType: p.contentType,
      charset: p.charset,
      transferEncoding: p.transferEncoding,
      disposition: p.disposition,
      filename: p.filename,
      size: p.size,
      truncated: p.truncated,
    })),
    texts: shown.texts,
  };
}

const indent = (text: string, by: string) => text.replace(/^/gm, by);

/** A message for a person: envelope, decoded headers, MIME outline, decoded text parts. */
export function shownText(shown: ShownMessage, now: number, color: boolean): string {
  const m = shown.message;
  const { dir, rel } = messLocation(m);
  const head = `${m.id} (${dir}, ${rel})`;
  let out = `${color ? `${BOLD}${head}${RESET}` : head}\n`;
  out += `  State: ${m.state}\n`;
  out += `  Return-path: <${oneLine(m.sender)}>\n`;
  for (const r of m.recipients) {
    const written = r.stored === r.address ? "" : ` (stored as ${oneLine(r.stored)})`;
    out += `  Recipient: ${r.channel} ${r.done ? "done " : ""}${oneLine(r.address)}${written}\n`;
  }
  out += `  Queued: ${qreadDate(m.birthTime)} GMT (${ageText(now - m.birthTime)} ago)\n`;
  out += `  Size: ${m.size} bytes\n`;
  out += `  Client IP: ${m.clientIp || "-"}\n`;
  out += `  Fingerprint: ${m.fingerprint}\n`;
  out += "Headers (decoded):\n";
  for (const f of shown.headers)
    out += `  ${oneLine(f.name === "" ? f.decoded : `${f.name}: ${f.decoded}`)}\n`;
  out += "MIME parts:\n";
  for (const p of shown.parts) {
    const facts = [
      p.contentType,
      p.charset && `charset=${p.charset}`,
      p.transferEncoding,
      p.filename && `"${oneLine(p.filename)}"`,
      `${p.size} bytes${p.truncated ? " (cut)" : ""}`,
    ].filter(Boolean);
    out += `  ${p.path || "-"}  ${facts.join("  ")}\n`;
  }
  for (const t of shown.texts) {
    out += `Text of part ${t.path} (${t.contentType})${t.truncated ? ", cut at the body cap" : ""}:\n`;
    out += `${indent(printable(t.text.replace(/\r?\n$/, "")), "  ")}\n`;
  }
  return out;
}

const GROUP_TITLES = {
  sender: "Top senders",
  recipientDomain: "Top recipient domains",
  subject: "Top subjects",
  clientIp: "Top client IPs",
} as const;

/** Top groups per dimension, then the qshape table. */
export function summaryText(summary: Summary): string {
  let out = `${summary.matched} messages, ${summary.matchedBytes} bytes\n`;
  for (const by of Object.keys(GROUP_TITLES) as (keyof typeof GROUP_TITLES)[]) {
    const groups = summary.groups.filter((g) => g.by === by);
    if (groups.length === 0) continue;
    out += `\n${GROUP_TITLES[by]}:\n`;
    const width = Math.max(...groups.map((g) => String(g.count).length));
    for (const g of groups) {
      const key = by === "sender" && g.key === "" ? "<>" : g.key === "" ? "(none)" : oneLine(g.key);
      out += `  ${String(g.count).padStart(width)}  ${key}  (${g.bytes} bytes)\n`;
    }
  }
  if (summary.errorBound > 0) {
    out += `\n(counts may be low by up to ${summary.errorBound}: too many distinct values to count exactly)\n`;
  }
  if (summary.shape) {
    const { bucketLabels, rows } = summary.shape;
    const domainWidth = Math.max(6, ...rows.map((r) => r.domain.length));
    const cells = (values: (string | number)[]) => values.map((v) => String(v).padStart(6)).join("");
    out += `\n${"".padStart(domainWidth)}${cells(["T", ...bucketLabels])}\n`;
    for (const row of rows) {
      out += `${oneLine(row.domain).padStart(domainWidth)}${cells([row.total, ...row.counts])}\n`;
    }
  }
  return out;
}

export function problemText(p: QueueProblem): string {
  return `${p.kind}: ${oneLine(p.detail)}\n`;
}
