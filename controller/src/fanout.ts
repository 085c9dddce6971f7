// Running one call on every targeted host: in parallel up to a bound, each host with its own
// deadline (counted from when its call starts, so hosts waiting for a slot do not time out), all
// cancellable at once. Every host ends in a named state, and results are yielded as they arrive.

import { type CallOptions, type ClientUnaryCall, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { AgentServiceClient } from "@qmfleet/proto";
import type { AgentClients } from "./connection.js";
import type { InventoryHost } from "./inventory.js";

/**
 * ok: answered. failed: answered with an error. timed_out: no answer within the deadline.
 * unreachable: no connection (refused, no route, TLS handshake rejected). denied: the agent
 * refused the certificate's identity or role. cancelled: the operator stopped the run first.
 */
export type HostState = "ok" | "failed" | "timed_out" | "unreachable" | "denied" | "cancelled";

export interface HostOutcome<T> {
  host: InventoryHost;
  state: HostState;
  /** Present when state is ok. */
  value?: T;
  /** What went wrong, e.g. "UNAVAILABLE: No connection established..." (absent when ok). */
  error?: string;
  elapsedMs: number;
}

export interface HostCallContext {
  host: InventoryHost;
  /** Pass as the gRPC deadline of every call made for this host. */
  deadline: Date;
  /** Aborted when the fan-out is cancelled: cancel the call. */
  signal: AbortSignal;
}

export type HostCall<T> = (client: AgentServiceClient, ctx: HostCallContext) => Promise<T>;

export interface FanOutOptions {
  /** Per-host deadline in milliseconds. */
  timeoutMs: number;
  /** Hosts called at once (default 32). */
  concurrency?: number;
  /** Aborting it cancels calls in flight; hosts not yet started end as cancelled. */
  signal?: AbortSignal;
}

function isServiceError(error: unknown): error is ServiceError {
  return typeof (error as ServiceError)?.code === "number" && "details" in (error as object);
}

function classify(error: unknown, cancelled: boolean): { state: HostState; error: string } {
  if (!isServiceError(error)) {
    return { state: cancelled ? "cancelled" : "failed", error: (error as Error)?.message ?? String(error) };
  }
  const text = `${status[error.code]}: ${error.details}`;
  switch (error.code) {
    case status.DEADLINE_EXCEEDED:
      return { state: "timed_out", error: text };
    case status.UNAVAILABLE:
      return { state: "unreachable", error: text };
    case status.UNAUTHENTICATED:
    case status.PERMISSION_DENIED:
      return { state: "denied", error: text };
    case status.CANCELLED:
      return { state: cancelled ? "cancelled" : "failed", error: text };
    default:
      return { state: "failed", error: text };
  }
}

/** Calls `call` on every host; yields each host's outcome as soon as it is known. */
export async function* fanOut<T>(
  hosts: readonly InventoryHost[],
  clients: AgentClients,
  call: HostCall<T>,
  options: FanOutOptions,
): AsyncGenerator<HostOutcome<T>> {
  const concurrency = Math.max(1, options.concurrency ?? 32);
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  if (options.signal?.aborted) {
    abort.abort();
  }

  const done: HostOutcome<T>[] = [];
  let wake: (() => void) | undefined;
  const finish = (outcome: HostOutcome<T>) => {
    done.push(outcome);
    wake?.();
  };

  const runHost = async (host: InventoryHost): Promise<void> => {
    const started = Date.now();
    if (abort.signal.aborted) {
      finish({ host, state: "cancelled", error: "cancelled before the call started", elapsedMs: 0 });
      return;
    }
    try {
      const value = await call(clients.client(host), {
        host,
        deadline: new Date(started + options.timeoutMs),
        signal: abort.signal,
      });
      finish({ host, state: "ok", value, elapsedMs: Date.now() - started });
    } catch (error) {
      finish({ host, ...classify(error, abort.signal.aborted), elapsedMs: Date.now() - started });
    }
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < hosts.length) {
      const host = hosts[next++] as InventoryHost;
      await runHost(host);
    }
  };
  const workers = Promise.all(Array.from({ length: Math.min(concurrency, hosts.length) }, worker));

  try {
    for (let yielded = 0; yielded < hosts.length; yielded++) {
      while (done.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      yield done.shift() as HostOutcome<T>;
    }
    await workers;
  } finally {
    // Also reached when the consumer stops early: cancel what is still running.
    abort.abort();
    options.signal?.removeEventListener("abort", onOuterAbort);
  }
}

/** A unary method of a grpc-js client, in its full form (request, metadata, options, callback). */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Promise form of a unary call, with the host's deadline and cancellation. */
export function unaryCall<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  ctx: HostCallContext,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const cancel = () => pending.cancel();
    const pending = method(request, new Metadata(), { deadline: ctx.deadline }, (error, response) => {
      ctx.signal.removeEventListener("abort", cancel);
      if (error) {
        reject(error);
      } else {
        resolve(response);
      }
    });
    if (ctx.signal.aborted) {
      pending.cancel();
    } else {
      ctx.signal.addEventListener("abort", cancel, { once: true });
    }
  });
}
