// Many hosts' server streams as one stream of {host, item}, without ever holding a fleet's worth
// of items: each host has a small buffer, and a host whose buffer is full stops reading its
// gRPC stream, which (HTTP/2 flow control) makes its agent wait in call.write -> 'drain'. So the
// whole pipeline, agent scan included, runs at the pace of whoever reads the merged stream.
//
// Two orders:
// - as they come (default): items of all hosts interleaved in arrival order, round robin over
//   the hosts that have something, so one fast host cannot starve the others;
// - merged by `order`: when every host's stream is sorted by the same comparison (see
//   @qmfleet/proto message-order.ts), a k-way merge gives one sorted fleet stream, holding one
//   buffer per host. It must see the next item of every live host before choosing, so every host
//   is called at once (concurrency is raised to the host count) and a slow host slows the merge.
//
// Every host ends in a named state, as in fanOut: its state event comes after its last item.
//
// Deadlines: a stream runs as long as its reader takes (`qmfleet -l | less` may sit for
// minutes), so its gRPC deadline is a generous ceiling, and the per-host timeout bounds silence
// instead: a host that sends nothing for that long while qmfleet waits for it ends as timed_out.
// Time the reader spends holding the stream back does not count.

import { type ClientReadableStream, Metadata, status } from "@grpc/grpc-js";
import type { AgentServiceClient } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import { type FanOutOptions, fanOut, type HostCallContext, type HostOutcome } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";

export type FleetStreamEvent<T> =
  | { kind: "item"; host: InventoryHost; item: T }
  /** The host's end; value is the number of items it sent. */
  | { kind: "host"; outcome: HostOutcome<number> };

export interface FleetStreamOptions<T> extends FanOutOptions {
  /** Merge hosts' sorted streams into one sorted stream by this comparison. */
  order?: (a: T, b: T) => number;
  /** Items held per host before its stream is paused (default 64). */
  bufferPerHost?: number;
}

/** The longest a stream may run, however patient its reader: 6 hours. */
export const STREAM_CEILING_MS = 6 * 3600 * 1000;

export interface StreamCallContext extends HostCallContext {
  /** The longest the host may stay silent while its next item is awaited. */
  idleMs: number;
}

/** Opens one host's stream; it must end (or throw) when ctx.signal aborts. */
export type OpenHostStream<T> = (client: AgentServiceClient, ctx: StreamCallContext) => AsyncIterable<T>;

/** What a silent host ends with: DEADLINE_EXCEEDED, so fanOut names it timed_out. */
function silence(idleMs: number): Error {
  const details = `the agent sent nothing for ${idleMs / 1000} s (--timeout)`;
  return Object.assign(new Error(details), {
    code: status.DEADLINE_EXCEEDED,
    details,
    metadata: new Metadata(),
  });
}

/**
 * A grpc-js server-streaming call as an async iterable: cancelled when ctx.signal aborts, or when
 * the host is silent for ctx.idleMs while an item is awaited. Items are read only as fast as the
 * consumer takes them.
 */
export async function* serverStream<Res>(
  start: (options: { deadline: Date }, metadata: Metadata) => ClientReadableStream<Res>,
  ctx: StreamCallContext,
): AsyncGenerator<Res> {
  const call = start({ deadline: ctx.deadline }, new Metadata());
  const cancel = () => call.cancel();
  if (ctx.signal.aborted) call.cancel();
  else ctx.signal.addEventListener("abort", cancel, { once: true });
  const items = call[Symbol.asyncIterator]();
  let silent = false;
  try {
    for (;;) {
      const timer = setTimeout(() => {
        silent = true;
        call.cancel();
      }, ctx.idleMs);
      let next: IteratorResult<Res>;
      try {
        next = await items.next();
      } catch (error) {
        throw silent ? silence(ctx.idleMs) : error;
      } finally {
        clearTimeout(timer);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    ctx.signal.removeEventListener("abort", cancel);
    // Left early (the consumer stopped): tell the agent to stop too.
    call.cancel();
  }
}

/** fanOut options for streams: the ceiling as the gRPC deadline, the timeout as the idle limit. */
export function streamFanOut(options: FanOutOptions): { fanOut: FanOutOptions; idleMs: number } {
  return {
    fanOut: { ...options, timeoutMs: Math.max(options.timeoutMs, STREAM_CEILING_MS) },
    idleMs: options.timeoutMs,
  };
}

interface HostBuffer<T> {
  host: InventoryHost;
  items: T[];
  outcome?: HostOutcome<number>;
  reported: boolean;
  /** A pump waiting for room. */
  room?: () => void;
}

/** Streams every targeted host's items as one stream, then each host's end. */
export async function* fleetStream<T>(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  open: OpenHostStream<T>,
  options: FleetStreamOptions<T>,
): AsyncGenerator<FleetStreamEvent<T>> {
  const capacity = Math.max(1, options.bufferPerHost ?? 64);
  const buffers = new Map<string, HostBuffer<T>>(
    hosts.map((host) => [host.name, { host, items: [], reported: false }]),
  );
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  if (options.signal?.aborted) stop.abort();

  let wake: (() => void) | undefined;
  const wakeConsumer = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const releasePumps = () => {
    for (const buffer of buffers.values()) {
      const resume = buffer.room;
      buffer.room = undefined;
      resume?.();
    }
  };
  stop.signal.addEventListener("abort", releasePumps, { once: true });

  const { fanOut: fanOutOptions, idleMs } = streamFanOut(options);
  const pump = async (client: AgentServiceClient, ctx: HostCallContext): Promise<number> => {
    const buffer = buffers.get(ctx.host.name) as HostBuffer<T>;
    let count = 0;
    for await (const item of open(client, { ...ctx, idleMs })) {
      while (buffer.items.length >= capacity && !ctx.signal.aborted) {
        await new Promise<void>((resume) => {
          buffer.room = resume;
        });
      }
      if (ctx.signal.aborted) break;
      buffer.items.push(item);
      count++;
      wakeConsumer();
    }
    return count;
  };

  const outcomes = (async () => {
    const run = fanOut(hosts, clients, pump, {
      ...fanOutOptions,
      signal: stop.signal,
      ...(options.order ? { concurrency: Math.max(options.concurrency ?? 32, hosts.length) } : {}),
    });
    for await (const outcome of run) {
      (buffers.get(outcome.host.name) as HostBuffer<T>).outcome = outcome;
      wakeConsumer();
    }
  })();

  const take = (buffer: HostBuffer<T>): FleetStreamEvent<T> => {
    const item = buffer.items.shift() as T;
    const resume = buffer.room;
    buffer.room = undefined;
    resume?.();
    return { kind: "item", host: buffer.host, item };
  };

  try {
    const live = [...buffers.values()];
    while (live.length > 0) {
      let progressed = false;
      // A host that has ended and has nothing left gets its state event.
      for (let i = live.length - 1; i >= 0; i--) {
        const buffer = live[i] as HostBuffer<T>;
        if (buffer.outcome && buffer.items.length === 0) {
          live.splice(i, 1);
          buffer.reported = true;
          progressed = true;
          yield { kind: "host", outcome: buffer.outcome };
        }
      }
      if (options.order) {
        const order = options.order;
        if (live.length > 0 && live.every((b) => b.items.length > 0)) {
          let best = live[0] as HostBuffer<T>;
          for (const b of live) if (order(b.items[0] as T, best.items[0] as T) < 0) best = b;
          progressed = true;
          yield take(best);
        }
      } else {
        for (const buffer of live) {
          if (buffer.items.length > 0) {
            progressed = true;
            yield take(buffer);
          }
        }
      }
      if (!progressed && live.length > 0) {
        await new Promise<void>((resume) => {
          wake = resume;
        });
      }
    }
    await outcomes;
  } finally {
    // Also reached when the consumer stops early: cancel every call still running.
    stop.abort();
    options.signal?.removeEventListener("abort", onOuterAbort);
    await outcomes;
  }
}
