// qmail-qread's output, byte for byte (qmail-queue.md §5, and qmail-qread.c): admins compare
// with what they know, and scripts parse it. For each message with an info file, in the order
// qmail-qread walks them (info/0 .. info/<split-1>, readdir order, which scan.ts keeps):
//   "28 Nov 2026 04:11:12 GMT  #1491085  245  <a@src.example> "  (+ " bouncing")
//   "\tremote\tr1@good.example" / "  done\tlocal\tok@mx1.example.test"  (local file first)
// Every byte outside 32..126 prints as "_", in the header line and in addresses alike.
//
// Known differences, all on damaged queues: qmail-qread prints "warning: trouble with #<id>"
// for an info file without mess, and skips a last record without its NUL; here the first is
// left to check.ts (orphan_info) and the second is printed.

import { envelopeBytes } from "./envelope.js";
import type { QueuedMessage, QueueLayout } from "./model.js";
import { scanQueue } from "./scan.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** qmail's date822fmt without its zone: "28 Nov 2026 04:11:12" (day not padded), UTC. */
export function qreadDate(unix: number): string {
  const d = new Date(unix * 1000);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

/** qmail-qread's out(): bytes outside 32..126 become "_". */
function safe(bytes: Buffer): string {
  let out = "";
  for (const b of bytes) out += b >= 32 && b <= 126 ? String.fromCharCode(b) : "_";
  return out;
}

const safeText = (text: string) => safe(envelopeBytes(text));

/** The block qmail-qread prints for one preprocessed message, newline-terminated lines. */
export function renderQreadBlock(m: QueuedMessage): string {
  let out = `${qreadDate(m.birthTime)} GMT  #${m.id}  ${m.size}  <${safeText(m.sender)}> ${m.bouncing ? " bouncing" : ""}\n`;
  for (const channel of ["local", "remote"] as const) {
    for (const r of m.recipients) {
      if (r.channel === channel) out += `${r.done ? "  done" : ""}\t${channel}\t${safeText(r.stored)}\n`;
    }
  }
  return out;
}

/** qmail-qread's whole output, block by block (messages not yet preprocessed are not listed). */
export async function* qmailQread(layout: QueueLayout): AsyncGenerator<string> {
  for await (const c of scanQueue(layout, { headers: false })) {
    if (c.message.state === "preprocessed" || c.message.state === "bouncing")
      yield renderQreadBlock(c.message);
  }
}
