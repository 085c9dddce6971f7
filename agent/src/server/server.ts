// Starting and stopping the agent's gRPC server. Mutual TLS always, except plaintext bound to
// loopback when asked for by name (development only, read role only).

import { hostname as osHostname } from "node:os";
import { resolve } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { AgentServiceService } from "@qmfleet/proto";
import type { PurgeEnvironment } from "../engine/purge.js";
import { QueueStatsSource } from "../engine/stats-source.js";
import { ChangesInFlight } from "./changes.js";
import { formatListenAddress, isLoopbackHost, parseListenAddress } from "./listen-address.js";
import type { RoleMap } from "./roles.js";
import type { AgentConfig } from "./rpc.js";
import { agentService } from "./service.js";
import { loadServerCredentials, type TlsFiles } from "./tls.js";
import { AGENT_VERSION } from "./version.js";

export interface AgentServerOptions {
  queueRoot: string;
  /** HOST:PORT; port 0 picks a free port (see AgentServer.port). */
  listen: string;
  tls?: TlsFiles;
  /** Plaintext, allowed only with a loopback listen address. Never in production. */
  insecureLoopback?: boolean;
  roleMap?: RoleMap;
  /** Reported in GetAgentInfo and queue ids; defaults to os.hostname(). */
  hostname?: string;
  /**
   * What purges, restores and retries need (state directory, audit log, quarantine, qmail-send
   * control); its queue root and host name are the server's. Absent: those RPCs are refused.
   */
  purge?: Omit<PurgeEnvironment, "queueRoot" | "hostname">;
}

export interface AgentServer {
  /** The address bound, with the real port. */
  address: string;
  port: number;
  config: AgentConfig;
  /**
   * Stops accepting calls, lets calls in flight finish for up to graceMs, then cancels the rest;
   * resolves once the changes to the queue in progress (purges, restores) have ended, however
   * long they take: one cut short could leave qmail-send stopped.
   */
  shutdown(graceMs?: number): Promise<void>;
}

async function credentialsFor(options: AgentServerOptions, host: string): Promise<ServerCredentials> {
  if (options.insecureLoopback) {
    if (options.tls) {
      throw new Error("--insecure-loopback and --tls-* contradict each other: give one or the other");
    }
    if (!isLoopbackHost(host)) {
      throw new Error(
        `--insecure-loopback needs a loopback listen address (127.0.0.1, ::1 or localhost), not ${host}`,
      );
    }
    return ServerCredentials.createInsecure();
  }
  if (!options.tls) {
    throw new Error(
      "refusing to serve without TLS: give --tls-ca, --tls-cert and --tls-key " +
        "(or, for development on this machine only, --insecure-loopback with a loopback --listen address)",
    );
  }
  return loadServerCredentials(options.tls);
}

function bind(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) {
        reject(new Error(`cannot listen on ${address}: ${error.message}`));
      } else {
        resolvePort(port);
      }
    });
  });
}

export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const listen = parseListenAddress(options.listen);
  const credentials = await credentialsFor(options, listen.host);
  const queueRoot = resolve(options.queueRoot);
  const hostname = options.hostname ?? osHostname();
  const config: AgentConfig = {
    queueRoot,
    hostname,
    version: AGENT_VERSION,
    roleMap: options.roleMap ?? new Map(),
    stats: new QueueStatsSource(queueRoot),
    changes: new ChangesInFlight(),
    ...(options.insecureLoopback ? { insecureRole: "read" as const } : {}),
    ...(options.purge ? { purge: { ...options.purge, queueRoot, hostname } } : {}),
  };
  // Fill the stats cache now, not on the first operator's call: at a million messages the first
  // pass lstats every file (~9 s on a small VM), later ones only what is new. An error here
  // (queue unreadable) is the one that call will report; nobody is waiting for this pass.
  config.stats.get().catch(() => {});
  const server = new Server();
  server.addService(AgentServiceService, agentService(config));
  const port = await bind(server, formatListenAddress(listen), credentials);
  const address = formatListenAddress({ host: listen.host, port });

  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000): Promise<void> => {
    stopping ??= new Promise<void>((done) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        done();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        done();
      });
    }).then(() => config.changes.settled());
    return stopping;
  };
  return { address, port, config, shutdown };
}
