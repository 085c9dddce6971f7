// qmfleet -m HOST:ID: one message as an operator reads it (envelope, decoded headers, MIME
// outline, text preview, then the raw message), or as one JSON document whose raw bytes are
// base64 (exact, whatever the charset). The raw part arrives in chunks and is written as it
// comes: neither form holds a 50 MB message.

import { StringDecoder } from "node:string_decoder";
import type { HostOutcome } from "@qmfleet/controller";
import { Channel, type MessageDetail } from "@qmfleet/proto";
import { hostJson } from "../actions/host-report.js";
import { oneLine, printable } from "../text-width.js";
import { messageRecord, stateName } from "./messages-view.js";
import { formatAge } from "./stats-view.js";

const indent = (text: string) => text.replace(/^/gm, "  ");

/** Lines of decoded text shown before the raw message (which has all of it). */
const TEXT_LINES = 20;

function utcDate(unix: number): string {
  return new Date(unix * 1000)
    .toISOString()
    .replace("T", " ")
    .replace(/\.000Z$/, " UTC");
}

/** The detail as text, before the raw message. */
export function detailText(host: string, detail: MessageDetail, now: number): string {
  const m = detail.summary;
  let out = `${host}:${m?.ref?.id ?? ""}\n`;
  if (m) {
    out += `  State: ${stateName(m.state)}\n`;
    out += `  Return-path: <${oneLine(m.sender)}>\n`;
    for (const r of m.recipients) {
      const channel = r.channel === Channel.CHANNEL_LOCAL ? "local" : "remote";
      const stored = r.storedAddress !== r.address ? ` (stored as ${oneLine(r.storedAddress)})` : "";
      out += `  Recipient: ${channel} ${r.done ? "done " : ""}${oneLine(r.address)}${stored}\n`;
    }
    out += `  Queued: ${utcDate(m.birthTimeUnix)} (${formatAge(now - m.birthTimeUnix)} ago)\n`;
    out += `  Size: ${m.size} bytes\n`;
    out += `  Client IP: ${m.clientIp || "-"}\n`;
    out += `  Fingerprint: ${m.ref?.fingerprint ?? ""}\n`;
  }
  out += "Headers (decoded):\n";
  for (const h of detail.headers)
    out += `  ${oneLine(h.name === "" ? h.decoded : `${h.name}: ${h.decoded}`)}\n`;
  out += "MIME parts:\n";
  for (const p of detail.parts) {
    const facts = [
      p.contentType,
      p.charset && `charset=${p.charset}`,
      p.transferEncoding,
      p.filename && `"${oneLine(p.filename)}"`,
      `${p.size} bytes`,
    ].filter(Boolean);
    out += `  ${p.path || "-"}  ${facts.join("  ")}\n`;
  }
  if (detail.textPreview !== "") {
    const lines = printable(detail.textPreview.replace(/\r?\n$/, "")).split(/\r?\n/);
    const shown = lines.slice(0, TEXT_LINES).join("\n");
    const more =
      lines.length > TEXT_LINES
        ? `  ... (${lines.length - TEXT_LINES} more lines: see the raw message)\n`
        : "";
    out += `Text:\n${indent(shown)}\n${more}`;
  }
  out += `--- raw message${m ? ` (${m.size} bytes)` : ""} ---\n`;
  return out;
}

/** The raw message as text for a terminal: UTF-8 decoded across chunk edges, controls as "?". */
export class RawText {
  private readonly decoder = new StringDecoder("utf8");
  private atLineStart = true;

  chunk(bytes: Buffer): string {
    return this.track(printable(this.decoder.write(bytes)));
  }

  end(bytesShown: number, size: number): string {
    const rest = this.track(printable(this.decoder.end()));
    // The marker below, and the shell prompt, start on a line of their own.
    const newline = this.atLineStart ? "" : "\n";
    const cut = bytesShown < size ? `--- cut at ${bytesShown} of ${size} bytes (--max-bytes) ---\n` : "";
    return `${rest}${newline}${cut}`;
  }

  private track(text: string): string {
    if (text !== "") this.atLineStart = text.endsWith("\n");
    return text;
  }
}

/** Base64 of a byte stream written piece by piece: whole 3-byte groups now, the rest with the next chunk. */
export class Base64Stream {
  private carry = Buffer.alloc(0);

  chunk(bytes: Buffer): string {
    const all = this.carry.length > 0 ? Buffer.concat([this.carry, bytes]) : bytes;
    const whole = all.length - (all.length % 3);
    this.carry = Buffer.from(all.subarray(whole));
    return all.subarray(0, whole).toString("base64");
  }

  end(): string {
    const rest = this.carry.toString("base64");
    this.carry = Buffer.alloc(0);
    return rest;
  }
}

/** The JSON document's opening, up to the raw bytes' string. */
export function detailJsonStart(host: string, detail: MessageDetail, now: number): string {
  const summary = detail.summary;
  const message = {
    ...(summary ? messageRecord(host, summary, now) : { host }),
    headers: detail.headers,
    parts: detail.parts,
    textPreview: detail.textPreview,
  };
  return `{"message":${JSON.stringify(message)},\n"rawBase64":"`;
}

/** The JSON document's end: raw length and the host's state (a document with no message if it failed first). */
export function detailJsonEnd(outcome: HostOutcome<unknown>, rawBytes: number, detailSent: boolean): string {
  const hosts = JSON.stringify([hostJson(outcome)]);
  return detailSent
    ? `",\n"rawBytes":${rawBytes},"hosts":${hosts}}\n`
    : `{"message":null,"hosts":${hosts}}\n`;
}
