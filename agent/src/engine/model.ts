// The queue engine's picture of a qmail queue. Plain data, no I/O: every module of the
// engine (scan, filter, stats, purge) speaks these types, and agent/src/server maps them
// to the wire contract in @qmfleet/proto.

export type Channel = "local" | "remote";

/**
 * preprocessed: info/ exists, qmail-send owns the message.
 * todo: committed (the intd -> todo link is qmail-queue's commit) but not yet preprocessed.
 * bouncing: preprocessed and bounce/<id> exists.
 * being-written: intd/ without todo/ - qmail-queue has not committed it; never touch it.
 */
export type MessageState = "preprocessed" | "todo" | "bouncing" | "being-written";

export interface Recipient {
  channel: Channel;
  /** As the sender wrote it: the virtual-domain prefix ("vp-") taken off. */
  address: string;
  /** As stored in the queue file. */
  stored: string;
  /** D record: delivered, or failed for good. */
  done: boolean;
}

/** Where the files of one message live, relative to the queue root. */
export interface MessagePaths {
  mess: string;
  info: string;
  local: string;
  remote: string;
  todo: string;
  intd: string;
  bounce: string;
}

/** Headers the engine keeps for every message (read from the header block only). */
export interface MessageHeaders {
  from: string;
  to: string;
  cc: string;
  /** RFC 2047-decoded, unfolded. */
  subject: string;
  /** Unfolded but not decoded, as it sits in the file. */
  subjectRaw: string;
  date: string;
  messageId: string;
}

export interface QueuedMessage {
  /** Decimal inode number of mess/<n>/<id> (may exceed 2^53). */
  id: string;
  /**
   * Identity beyond the id, which the file system reuses: see fingerprint.ts. Re-checked
   * right before any change.
   */
  fingerprint: string;
  state: MessageState;
  /** info mtime in seconds (qmail's birth time); for todo messages, the todo mtime. */
  birthTime: number;
  /** Size of the mess file in bytes. */
  size: number;
  /** Envelope sender: "" is <>, "#@[]" the double-bounce sender. */
  sender: string;
  recipients: Recipient[];
  headers: MessageHeaders;
  /** First external client IP in the Received chain, "" when none. */
  clientIp: string;
  bouncing: boolean;
  paths: MessagePaths;
}

export interface QueueLayout {
  /** Absolute path of the queue root (e.g. /var/qmail/queue). */
  root: string;
  /** conf-split, detected from mess/: directories 0..split-1. */
  split: number;
  /** big-todo: todo/ and intd/ are split too. */
  bigTodo: boolean;
}

export interface QueueStats {
  /** qmail-qstat: files under mess/. */
  messagesInQueue: number;
  /** qmail-qstat: files under todo/. */
  notPreprocessed: number;
  preprocessed: number;
  withLocal: number;
  withRemote: number;
  bouncing: number;
  beingWritten: number;
  bytes: number;
  /** Seconds since epoch of the oldest preprocessed message, 0 when none. */
  oldestBirth: number;
  oldestAgeSeconds: number;
  /** False when bytes and oldest* were not computed (huge queue, see stats.ts): they are 0 then. */
  detailed?: boolean;
}

/** An operator's pattern: run by RE2 (linear time) so no pattern can hang the agent. */
export interface PatternSpec {
  source: string;
  caseInsensitive: boolean;
}

export interface RangeSpec {
  min?: number;
  max?: number;
}

/** One filter criterion; qmHandle's flag in brackets where it has one. */
export type CriterionKind =
  | { kind: "all" } // -D
  | { kind: "ids"; ids: string[] } // -dN (ORed)
  | { kind: "senderExact"; sender: string } // -f
  | { kind: "senderRegex"; pattern: PatternSpec } // -F
  | { kind: "subjectContains"; text: string } // -S
  | { kind: "headerRegex"; pattern: PatternSpec } // -h / -H
  | { kind: "bodyRegex"; pattern: PatternSpec } // -b / -B
  | { kind: "toCcContains"; text: string } // -x
  | { kind: "toCcRegex"; pattern: PatternSpec } // -X
  | { kind: "recipientRegex"; pattern: PatternSpec }
  | { kind: "recipientDomain"; domain: string }
  | { kind: "ageSeconds"; range: RangeSpec }
  | { kind: "sizeBytes"; range: RangeSpec }
  | { kind: "channel"; channel: Channel }
  | { kind: "state"; state: MessageState };

export type Criterion = CriterionKind & { negate?: boolean };

/** Criteria combine with AND. An empty filter matches nothing: "everything" is said with `all`. */
export interface Filter {
  criteria: Criterion[];
}
