// The envelope files of a queued message (qmail-queue.md §3): NUL-terminated records, a type
// byte then the address. info holds F<sender>; local/remote hold T<addr> (to deliver) or D<addr>
// (done); todo/intd hold u<uid>, p<pid>, F<sender>, T<rcpt>... Files are read as they are:
// a record without its final NUL or of an unknown type is kept where it makes sense and
// reported, so check.ts can list it and a listing never crashes on a damaged queue.

import { isUtf8 } from "node:buffer";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Channel, Recipient } from "./model.js";

// Bytes that are not valid UTF-8 become U+DC80..U+DCFF ("surrogate escape"): valid UTF-8 never
// decodes to those, so the text maps back to the exact bytes (qmail-qread's "_" per byte, an
// exact -f match on an 8-bit sender) while valid UTF-8 addresses read as text.
const ESCAPE_BASE = 0xdc00;

/** Text of an envelope field: ASCII or valid UTF-8 as such, other bytes escaped (see envelopeBytes). */
export function envelopeText(bytes: Buffer, start = 0, end = bytes.length): string {
  let high = false;
  for (let i = start; i < end && !high; i++) high = (bytes[i] as number) >= 0x80;
  if (!high) return bytes.toString("latin1", start, end);
  const field = bytes.subarray(start, end);
  if (isUtf8(field)) return field.toString("utf8");
  let out = "";
  for (const b of field) out += String.fromCharCode(b < 0x80 ? b : ESCAPE_BASE + b);
  return out;
}

/** The exact bytes an envelopeText came from. */
export function envelopeBytes(text: string): Buffer {
  let escaped = false;
  for (let i = 0; i < text.length && !escaped; i++) {
    const c = text.charCodeAt(i);
    escaped = c >= ESCAPE_BASE + 0x80 && c <= ESCAPE_BASE + 0xff;
  }
  if (!escaped) return Buffer.from(text, "utf8");
  const out = Buffer.allocUnsafe(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[i] = c >= ESCAPE_BASE ? c - ESCAPE_BASE : c;
  }
  return out;
}

/**
 * Problems in words ("missing final NUL"...), each listed once in the order first found, a
 * repeated one with how often: a damaged file of a million empty records is one line, not a
 * million strings.
 */
class Problems {
  // Made on the first problem: most files have none, and a scan parses two or three a message.
  private counts: Map<string, number> | undefined;

  add(problem: string): void {
    this.counts ??= new Map();
    this.counts.set(problem, (this.counts.get(problem) ?? 0) + 1);
  }

  list(): string[] {
    if (!this.counts) return [];
    return [...this.counts].map(([problem, n]) => (n === 1 ? problem : `${problem} (${n} times)`));
  }
}

/**
 * Calls `each` with the type ("F", "T", "D", "u", "p"..., "" for an empty record) and the text
 * of every record of a file (envelopeText), in order, without keeping them (an envelope file can
 * be large); a trailing record without NUL is passed on and reported. Returns how many records
 * there were.
 */
function eachRecord(data: Buffer, problems: Problems, each: (type: string, text: string) => void): number {
  let count = 0;
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end === -1) {
      problems.add("missing final NUL");
      end = data.length;
    }
    if (end === start) each("", "");
    else each(String.fromCharCode(data[start] as number), envelopeText(data, start + 1, end));
    count++;
    start = end + 1;
  }
  return count;
}

function describeType(type: string): string {
  if (type === "") return "empty record";
  const code = type.charCodeAt(0);
  const shown = code >= 0x20 && code < 0x7f ? type : `\\x${code.toString(16).padStart(2, "0")}`;
  return `unknown record type "${shown}"`;
}

export interface ParsedInfo {
  /** "" is <>, "#@[]" the double-bounce sender. */
  sender: string;
  problems: string[];
}

/** info/N/<id>: exactly one F record. */
export function parseInfo(data: Buffer): ParsedInfo {
  const problems = new Problems();
  let sender: string | undefined;
  const count = eachRecord(data, problems, (type, text) => {
    if (type === "F" && sender === undefined) sender = text;
    else if (type === "F") problems.add("more than one F record");
    else problems.add(describeType(type));
  });
  if (count === 0) return { sender: "", problems: ["empty info file"] };
  if (sender === undefined) problems.add("no F record");
  return { sender: sender ?? "", problems: problems.list() };
}

export interface ParsedRecipients {
  recipients: Recipient[];
  problems: string[];
}

/** local/N/<id> or remote/N/<id>: T and D records; other records are reported and skipped. */
export function parseRecipients(data: Buffer, channel: Channel, vdoms: VirtualDomains): ParsedRecipients {
  const problems = new Problems();
  const recipients: Recipient[] = [];
  const count = eachRecord(data, problems, (type, stored) => {
    if (type === "T" || type === "D") {
      const address = channel === "local" ? vdoms.strip(stored) : stored;
      recipients.push({ channel, address, stored, done: type === "D" });
    } else {
      problems.add(describeType(type));
    }
  });
  if (count === 0) problems.add(`empty ${channel} file`);
  return { recipients, problems: problems.list() };
}

export interface ParsedTodo {
  uid: number | undefined;
  pid: number | undefined;
  sender: string;
  /** Recipients as qmail-queue received them: no channel yet (qmail-send decides it). */
  recipients: string[];
  problems: string[];
}

/** todo/<id> and intd/<id>: u, p, F, then T records. */
export function parseTodo(data: Buffer): ParsedTodo {
  const problems = new Problems();
  const out: ParsedTodo = { uid: undefined, pid: undefined, sender: "", recipients: [], problems: [] };
  let sawSender = false;
  eachRecord(data, problems, (type, text) => {
    if (type === "u") out.uid = Number(text);
    else if (type === "p") out.pid = Number(text);
    else if (type === "F" && !sawSender) {
      out.sender = text;
      sawSender = true;
    } else if (type === "T") out.recipients.push(text);
    else problems.add(type === "F" ? "more than one F record" : describeType(type));
  });
  if (!sawSender) problems.add("no F record");
  out.problems = problems.list();
  return out;
}

/**
 * control/virtualdomains: qmail-send stores a local recipient of a virtual domain as
 * "<prefix>-<address>". Entries are "domain:prefix", ".domain:prefix" (any subdomain) and
 * "user@domain:prefix" (one address); an empty prefix means "not virtual". qmail looks up the
 * address, then the domain, then each parent of the domain with a leading dot.
 */
export class VirtualDomains {
  private readonly exact = new Map<string, string>();
  private readonly domains = new Map<string, string>();

  static readonly none = new VirtualDomains("");

  constructor(text: string) {
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const colon = line.indexOf(":");
      if (colon === -1) continue;
      const key = line.slice(0, colon).toLowerCase();
      const prefix = line.slice(colon + 1);
      if (key.includes("@")) this.exact.set(key, prefix);
      else this.domains.set(key, prefix);
    }
  }

  get size(): number {
    return this.exact.size + this.domains.size;
  }

  /** The address the sender wrote, from the stored one ("vp-user@vdom.example" -> "user@vdom.example"). */
  strip(stored: string): string {
    if (this.size === 0) return stored;
    const at = stored.lastIndexOf("@");
    if (at === -1) return stored;
    const domain = stored.slice(at + 1).toLowerCase();
    for (const [addr, prefix] of this.exact) {
      if (
        prefix !== "" &&
        addr.endsWith(`@${domain}`) &&
        stored.toLowerCase() === `${prefix}-${addr}`.toLowerCase()
      ) {
        return stored.slice(prefix.length + 1);
      }
    }
    const prefix = this.prefixFor(domain);
    if (prefix && stored.startsWith(`${prefix}-`)) return stored.slice(prefix.length + 1);
    return stored;
  }

  /** Whether qmail-send would deliver this (as-written) address locally as a virtual domain. */
  isVirtual(address: string): boolean {
    const lower = address.toLowerCase();
    const exact = this.exact.get(lower);
    if (exact !== undefined) return exact !== "";
    const at = lower.lastIndexOf("@");
    return (this.prefixFor(at === -1 ? "" : lower.slice(at + 1)) ?? "") !== "";
  }

  private prefixFor(domain: string): string | undefined {
    const exact = this.domains.get(domain);
    if (exact !== undefined) return exact;
    for (let dot = domain.indexOf("."); dot !== -1; dot = domain.indexOf(".", dot + 1)) {
      const wild = this.domains.get(domain.slice(dot));
      if (wild !== undefined) return wild;
    }
    return this.domains.get("");
  }
}

function readControl(qmailHome: string, name: string): string | undefined {
  const file = path.join(qmailHome, "control", name);
  try {
    return fs.readFileSync(file, "latin1");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new Error(`cannot read ${file}: ${code ?? err} (run the agent as root)`);
  }
}

/**
 * Reads <qmailHome>/control/virtualdomains. A host without virtual domains has no such file:
 * that is the normal case, not an error.
 */
export function loadVirtualDomains(qmailHome: string): VirtualDomains {
  const text = readControl(qmailHome, "virtualdomains");
  return text === undefined ? VirtualDomains.none : new VirtualDomains(text);
}

/**
 * What qmail-send needs to give a recipient its channel: a message still in todo/ has no
 * channel yet, so it is computed the same way (local when the domain is in control/locals, or
 * control/me when there is no locals file, or is a virtual domain; remote otherwise).
 */
export class Routing {
  readonly vdoms: VirtualDomains;
  private readonly locals: Set<string>;

  constructor(vdoms: VirtualDomains, locals: Iterable<string>) {
    this.vdoms = vdoms;
    this.locals = new Set([...locals].map((d) => d.toLowerCase()));
  }

  channelOf(address: string): Channel {
    const at = address.lastIndexOf("@");
    const domain = at === -1 ? "" : address.slice(at + 1).toLowerCase();
    return this.locals.has(domain) || this.vdoms.isVirtual(address) ? "local" : "remote";
  }
}

function controlLines(text: string | undefined): string[] {
  return (text ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

export function loadRouting(qmailHome: string): Routing {
  const locals = readControl(qmailHome, "locals");
  const domains = controlLines(locals === undefined ? readControl(qmailHome, "me") : locals);
  return new Routing(loadVirtualDomains(qmailHome), domains);
}
