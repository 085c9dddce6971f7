// The client address of a message, read from its Received chain: what an operator looking at a
// spam run wants to block. "External" is decided here as the first public address walking down
// from the top (the newest hop): the top hop that carries an address is normally the client that
// handed the message to this server; when it is loopback or private (a local content filter, an
// internal relay), the walk continues to the hop below. Documentation ranges (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) count as public: test fixtures use them.
// Hops with no address at all (qmail-queue's "(qmail 123 invoked by uid 0)") are skipped.
import { BlockList, isIP } from "node:net";

// IPv4 ranges that are not a client out on the internet, as [first, last] address numbers.
// Checked by arithmetic: net.BlockList builds a SocketAddress per check, which cost as much as
// the rest of the header summary in a profile of a 50,000-message scan.
const IPV4_NOT_EXTERNAL: ReadonlyArray<readonly [number, number]> = (
  [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10], // carrier-grade NAT: the ISP's public address is what this server sees
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.168.0.0", 16],
    ["224.0.0.0", 4],
    ["240.0.0.0", 4],
  ] as const
).map(([net, prefix]) => {
  const first = ipv4Number(net);
  return [first, first + 2 ** (32 - prefix) - 1] as const;
});

/** A dotted quad (already validated by isIP) as a number. */
function ipv4Number(ip: string): number {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      n = n * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 0x30);
    }
  }
  return n * 256 + octet;
}

const IPV6_NOT_EXTERNAL = new BlockList();
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  IPV6_NOT_EXTERNAL.addSubnet(net, prefix, "ipv6");
}

const IPV6_PREFIX = /^ipv6:/i;
const IPV4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;
const PORT = /:\d+$/;

/** A literal as found in a header ("IPv6:2001:db8::1", "::ffff:1.2.3.4") to a plain address, or "". */
function normalizeAddress(literal: string): string {
  // Each pattern is tried only where its first character is (this runs for every token of every
  // Received comment of a scan).
  const first = literal.charCodeAt(0);
  const bare = first === 0x69 || first === 0x49 ? literal.replace(IPV6_PREFIX, "") : literal;
  const mapped = bare.charCodeAt(0) === 0x3a ? IPV4_MAPPED.exec(bare) : null;
  if (mapped) return mapped[1] as string;
  const version = isIP(bare);
  if (version === 4) return bare;
  if (version === 6) return bare.toLowerCase();
  return "";
}

/** False for loopback, private, link-local, CGNAT, multicast and unspecified addresses. */
export function isExternalAddress(ip: string): boolean {
  const version = isIP(ip);
  if (version === 6) return !IPV6_NOT_EXTERNAL.check(ip, "ipv6");
  if (version !== 4) return false;
  const n = ipv4Number(ip);
  // Indexed, not destructured: this runs for every message of a scan.
  for (const range of IPV4_NOT_EXTERNAL) if (n >= range[0] && n <= range[1]) return false;
  return true;
}

const BRACKETED = /\[([^\]\s]+)\]/g;
const TOKEN_SEPARATORS = /[\s()[\]@,;]+/;

/** The first address in `text`: a bracketed literal ([1.2.3.4], [IPv6:...]) first, then a bare one. */
function firstAddressIn(text: string): string {
  if (text.includes("[")) {
    for (const match of text.matchAll(BRACKETED)) {
      const ip = normalizeAddress(match[1] as string);
      if (ip) return ip;
    }
  }
  // The common case, a comment that is the address alone (qmail-smtpd's "(1.2.3.4)"): the one
  // token the split would give, without splitting.
  const whole = normalizeAddress(text);
  if (whole) return whole;
  for (const token of text.split(TOKEN_SEPARATORS)) {
    if (token === "") continue;
    // "user@1.2.3.4" (qmail-smtpd with ident) splits on "@"; "1.2.3.4:25123" drops the port.
    const ip =
      normalizeAddress(token) || (token.includes(":") ? normalizeAddress(token.replace(PORT, "")) : "");
    if (ip) return ip;
  }
  return "";
}

// A comment naming what the client said in HELO is the client's claim, not its address.
const HELO_COMMENT = /^\s*(?:HELO|EHLO)\b/i;
const HELO_PARAMETER = /\b(?:helo|ehlo)=\S*/gi;
const FROM_CLAUSE_START = /^\s*from\s/i;
const FROM_CLAUSE_END = /\s+by\s/iy;
const PARENTHESES = /[()]/g;

/**
 * The client address one Received field records, "" when it records none. The value may be
 * folded and untrimmed: its line breaks, always followed by a blank in a field, are blanks here
 * too, so the answer is the unfolded value's. Understands
 * qmail-smtpd (`from host (HELO x) (1.2.3.4)`, `(user@1.2.3.4)`), Postfix and Sendmail
 * (`from helo (rdns [1.2.3.4])`) and Exim (`from [1.2.3.4] (helo=x)`, `from host ([1.2.3.4] helo=x)`).
 * Addresses in the HELO argument are ignored: a client can claim any of them.
 */
export function receivedClientIp(value: string): string {
  const fromAt = FROM_CLAUSE_START.exec(value);
  if (!fromAt) return "";
  // The from clause is split into comments (nested ones flattened) and the text outside them;
  // the comments are read in order (the first address found is the answer), then the outside.
  let outside = "";
  let depth = 0;
  let nested = false;
  let runStart = fromAt[0].length;
  let end = value.length;
  for (let i = runStart; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x28) {
      if (depth === 0) {
        outside += `${value.slice(runStart, i)} `;
        runStart = i + 1;
        nested = false;
      } else {
        nested = true;
      }
      depth++;
    } else if (c === 0x29 && depth > 0) {
      depth--;
      if (depth === 0) {
        const ip = commentAddress(value.slice(runStart, i), nested);
        if (ip) return ip;
        runStart = i + 1;
      }
    } else if (depth === 0 && (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d)) {
      // The from clause ends at " by " (qmail folds it onto the next line: "\n  by mx with SMTP").
      FROM_CLAUSE_END.lastIndex = i;
      if (FROM_CLAUSE_END.test(value)) {
        end = i;
        break;
      }
    }
  }
  if (depth > 0) return commentAddress(value.slice(runStart, end), nested) || firstAddressIn(outside);
  return firstAddressIn(outside + value.slice(runStart, end));
}

/** The address a comment of a from clause gives, "" for none or for a HELO comment. */
function commentAddress(comment: string, nested: boolean): string {
  const text = nested ? comment.replace(PARENTHESES, " ") : comment;
  if (HELO_COMMENT.test(text)) return "";
  return firstAddressIn(text.includes("=") ? text.replace(HELO_PARAMETER, " ") : text);
}

/** The client address one Received field records when it is an external one, else "". */
export function externalClientIp(value: string): string {
  const ip = receivedClientIp(value);
  return ip && isExternalAddress(ip) ? ip : "";
}
