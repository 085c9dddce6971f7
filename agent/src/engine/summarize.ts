// "What is filling the queue?": the top senders, recipient domains, subjects and client IPs by
// message count (with bytes), and a qshape-style table of recipient domains by age. One pass
// over the messages, never a list of them.
//
// Memory is bounded whatever the queue: each dimension keeps at most 2 x maxKeys distinct keys.
// When it would grow past that, the lowest-count half is dropped (lossy counting): a key that
// is in the top N of a real incident (thousands of messages) is never dropped, while a long
// tail of one-off subjects costs nothing. After a prune, counts of keys that came back may be
// low by at most `errorBound`, which the result reports (0 = exact).

import type { QueuedMessage } from "./model.js";

export type GroupBy = "sender" | "recipientDomain" | "subject" | "clientIp";

export interface GroupCount {
  by: GroupBy;
  key: string;
  count: number;
  bytes: number;
}

/** qshape's columns: age under 5 minutes, 5-10, 10-20, ... 640-1280, 1280 and more. */
export const SHAPE_BUCKET_LIMITS_MINUTES = [5, 10, 20, 40, 80, 160, 320, 640, 1280];
export const SHAPE_BUCKET_LABELS = [...SHAPE_BUCKET_LIMITS_MINUTES.map(String), "1280+"];

export interface ShapeRow {
  domain: string;
  total: number;
  /** One count per SHAPE_BUCKET_LABELS entry. */
  counts: number[];
}

export interface ShapeTable {
  bucketLabels: string[];
  /** "TOTAL" first, then the domains by total, as qshape prints. */
  rows: ShapeRow[];
}

export interface Summary {
  groups: GroupCount[];
  shape: ShapeTable | undefined;
  matched: number;
  matchedBytes: number;
  /** Largest possible undercount of any reported count (0: every count exact). */
  errorBound: number;
}

export interface SummarizeOptions {
  groupBy: GroupBy[];
  /** Groups kept per dimension (default 20). */
  top?: number;
  /** Build the qshape table (recipient domain x age). */
  shape?: boolean;
  /** Unix seconds, for ages. */
  now: number;
  /** Distinct keys kept per dimension before pruning (default 10,000). */
  maxKeys?: number;
}

interface Tally {
  count: number;
  bytes: number;
  ages: number[] | undefined;
}

class BoundedCounter {
  readonly tallies = new Map<string, Tally>();
  errorBound = 0;

  constructor(
    private readonly maxKeys: number,
    private readonly withAges: boolean,
  ) {}

  add(key: string, bytes: number, bucket: number): void {
    let t = this.tallies.get(key);
    if (!t) {
      t = {
        count: 0,
        bytes: 0,
        ages: this.withAges ? new Array(SHAPE_BUCKET_LABELS.length).fill(0) : undefined,
      };
      this.tallies.set(key, t);
      if (this.tallies.size > 2 * this.maxKeys) this.prune();
    }
    t.count++;
    t.bytes += bytes;
    if (t.ages) t.ages[bucket] = (t.ages[bucket] ?? 0) + 1;
  }

  private prune(): void {
    const sorted = [...this.tallies.entries()].sort((a, b) => b[1].count - a[1].count);
    for (const [key, t] of sorted.slice(this.maxKeys)) {
      this.errorBound = Math.max(this.errorBound, t.count);
      this.tallies.delete(key);
    }
  }

  top(n: number): Array<[string, Tally]> {
    return [...this.tallies.entries()]
      .sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, n);
  }
}

function ageBucket(ageSeconds: number): number {
  const minutes = ageSeconds / 60;
  const i = SHAPE_BUCKET_LIMITS_MINUTES.findIndex((limit) => minutes < limit);
  return i === -1 ? SHAPE_BUCKET_LIMITS_MINUTES.length : i;
}

/**
 * Recipient domains of a message still waiting for delivery (records not yet done; all of them
 * when every record is done), lower-cased, each once: a message counts once per domain.
 */
function recipientDomains(m: QueuedMessage): Set<string> {
  const pending = m.recipients.filter((r) => !r.done);
  const domains = new Set<string>();
  for (const r of pending.length > 0 ? pending : m.recipients) {
    const at = r.address.lastIndexOf("@");
    domains.add(at === -1 ? "" : r.address.slice(at + 1).toLowerCase());
  }
  return domains;
}

export class Summarizer {
  private readonly counters = new Map<GroupBy, BoundedCounter>();
  private readonly shape: BoundedCounter | undefined;
  // qshape's TOTAL row, kept apart so that pruning rare domains never lowers it.
  private readonly shapeTotal: ShapeRow = {
    domain: "TOTAL",
    total: 0,
    counts: new Array(SHAPE_BUCKET_LABELS.length).fill(0),
  };
  private matched = 0;
  private matchedBytes = 0;

  constructor(private readonly opts: SummarizeOptions) {
    const maxKeys = opts.maxKeys ?? 10_000;
    for (const by of opts.groupBy) this.counters.set(by, new BoundedCounter(maxKeys, false));
    this.shape = opts.shape ? new BoundedCounter(maxKeys, true) : undefined;
  }

  add(m: QueuedMessage): void {
    this.matched++;
    this.matchedBytes += m.size;
    const bucket = ageBucket(Math.max(0, this.opts.now - m.birthTime));
    for (const [by, counter] of this.counters) {
      if (by === "recipientDomain") {
        for (const d of recipientDomains(m)) counter.add(d, m.size, bucket);
      } else {
        const key = by === "sender" ? m.sender : by === "subject" ? m.headers.subject : m.clientIp;
        counter.add(key, m.size, bucket);
      }
    }
    if (this.shape) {
      for (const d of recipientDomains(m)) {
        this.shape.add(d, m.size, bucket);
        this.shapeTotal.total++;
        this.shapeTotal.counts[bucket] = (this.shapeTotal.counts[bucket] ?? 0) + 1;
      }
    }
  }

  result(): Summary {
    const top = this.opts.top && this.opts.top > 0 ? this.opts.top : 20;
    const groups: GroupCount[] = [];
    let errorBound = 0;
    for (const [by, counter] of this.counters) {
      errorBound = Math.max(errorBound, counter.errorBound);
      for (const [key, t] of counter.top(top)) groups.push({ by, key, count: t.count, bytes: t.bytes });
    }
    return {
      groups,
      shape: this.shape ? this.shapeTable(this.shape, top) : undefined,
      matched: this.matched,
      matchedBytes: this.matchedBytes,
      errorBound: Math.max(errorBound, this.shape?.errorBound ?? 0),
    };
  }

  private shapeTable(counter: BoundedCounter, top: number): ShapeTable {
    const rows = counter.top(top).map(([domain, t]) => ({ domain, total: t.count, counts: t.ages ?? [] }));
    const total = { ...this.shapeTotal, counts: [...this.shapeTotal.counts] };
    return { bucketLabels: [...SHAPE_BUCKET_LABELS], rows: [total, ...rows] };
  }
}

/** Summarizes a stream of messages (e.g. scanQueue's, after a filter). */
export async function summarize(
  messages: AsyncIterable<QueuedMessage> | Iterable<QueuedMessage>,
  opts: SummarizeOptions,
): Promise<Summary> {
  const s = new Summarizer(opts);
  for await (const m of messages) s.add(m);
  return s.result();
}
