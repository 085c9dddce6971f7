// The shape every RPC handler has, and the adapter that turns it into a grpc-js handler. The
// adapter does what every call needs before a handler runs: it names the caller from the verified
// client certificate, checks the caller's role against the RPC's, insists on a deadline, ties an
// AbortSignal to cancellation, waits for drain on streams, and maps every error to a status.

import { once } from "node:events";
import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerUnaryCall,
  status,
} from "@grpc/grpc-js";
import type { PurgeEnvironment } from "../engine/purge.js";
import type { QueueStatsSource } from "../engine/stats-source.js";
import type { ChangesInFlight } from "./changes.js";
import { commonName, describePeer, type Role, type RoleMap, roleAllows, roleOfCertificate } from "./roles.js";
import { RpcError, toRpcError } from "./rpc-error.js";

// What unary and streaming calls have in common (grpc-js does not export ServerSurfaceCall).
type ServerSurfaceCall = ServerUnaryCall<unknown, unknown>;

/** What the agent was started with; shared by every call. */
export interface AgentConfig {
  /** Absolute queue root. */
  queueRoot: string;
  hostname: string;
  version: string;
  roleMap: RoleMap;
  /**
   * Plaintext on loopback (development only): there is no certificate to take a role from, so
   * every caller gets this role. The serve command grants "read" only.
   */
  insecureRole?: Role;
  /**
   * Where and how this agent changes its queue (state directory, audit log, quarantine,
   * qmail-send control). Absent: the changing RPCs answer FAILED_PRECONDITION.
   */
  purge?: PurgeEnvironment;
  /** The queue's statistics, cached between calls and one pass at a time. */
  stats: QueueStatsSource;
  /** Purges, restores and retries running now: a shutdown waits for them. */
  changes: ChangesInFlight;
}

/** What one call knows about itself. */
export interface CallContext {
  agent: AgentConfig;
  role: Role;
  /** The caller, for messages and logs: "certificate CN=...,OU=...", or "plaintext client ADDRESS". */
  peer: string;
  /** Who is acting, for the audit log: the client certificate's CN (else the peer). */
  caller: string;
  /** Aborted when the client cancels or its deadline passes: long work must stop then. */
  signal: AbortSignal;
  deadline: Date;
}

export interface UnaryRpc<Req, Res> {
  role: Role;
  handle(request: Req, ctx: CallContext): Promise<Res>;
}

export interface StreamRpc<Req, Res> {
  role: Role;
  /** Sends each response with `send`, which waits while the client is slow to read. */
  handle(request: Req, ctx: CallContext, send: (response: Res) => Promise<void>): Promise<void>;
}

interface Caller {
  role: Role | undefined;
  peer: string;
  caller: string;
}

function authenticate(call: ServerSurfaceCall, agent: AgentConfig): Caller {
  const cert = call.getAuthContext().sslPeerCertificate;
  // Node reports "no certificate" as an empty object.
  if (cert?.subject === undefined) {
    if (agent.insecureRole) {
      const peer = `plaintext client ${call.getPeer()}`;
      return { role: agent.insecureRole, peer, caller: peer };
    }
    throw new RpcError(status.UNAUTHENTICATED, "no client certificate: the agent requires mutual TLS");
  }
  return {
    role: roleOfCertificate(cert, agent.roleMap),
    peer: `certificate ${describePeer(cert)}`,
    caller: commonName(cert) ?? describePeer(cert),
  };
}

function openCall(call: ServerSurfaceCall, agent: AgentConfig, needed: Role, method: string): CallContext {
  const { role, peer, caller } = authenticate(call, agent);
  if (role === undefined) {
    throw new RpcError(
      status.PERMISSION_DENIED,
      `${peer} carries no qmfleet role: issue it with OU=read or OU=admin, or start the agent with --role '<CN>=read'`,
    );
  }
  if (!roleAllows(role, needed)) {
    throw new RpcError(status.PERMISSION_DENIED, `${method} needs the ${needed} role; ${peer} has ${role}`);
  }
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(deadlineMs)) {
    throw new RpcError(
      status.INVALID_ARGUMENT,
      `${method} was called without a deadline: every call must set one`,
    );
  }
  const abort = new AbortController();
  if (call.cancelled) {
    abort.abort();
  } else {
    call.once("cancelled", () => abort.abort());
  }
  return { agent, role, peer, caller, signal: abort.signal, deadline: new Date(deadlineMs) };
}

export function adaptUnary<Req, Res>(
  method: string,
  rpc: UnaryRpc<Req, Res>,
  agent: AgentConfig,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => rpc.handle(call.request, openCall(call, agent, rpc.role, method)))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toRpcError(error)),
      );
  };
}

export function adaptStream<Req, Res>(
  method: string,
  rpc: StreamRpc<Req, Res>,
  agent: AgentConfig,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    Promise.resolve()
      .then(() => {
        const ctx = openCall(call, agent, rpc.role, method);
        const send = async (response: Res): Promise<void> => {
          if (ctx.signal.aborted) {
            throw new RpcError(status.CANCELLED, `${method} was cancelled by the client`);
          }
          if (!call.write(response)) {
            await once(call, "drain", { signal: ctx.signal });
          }
        };
        return rpc.handle(call.request, ctx, send);
      })
      .then(
        () => call.end(),
        // grpc-js turns an "error" event on a server stream into the call's final status.
        (error: unknown) => call.emit("error", toRpcError(error)),
      );
  };
}
