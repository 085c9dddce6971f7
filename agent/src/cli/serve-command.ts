// `qmfleet-agent serve`: serve one queue over gRPC with mutual TLS until SIGTERM or SIGINT.

import type { Command } from "commander";
import { detectLayout } from "../engine/layout.js";
import { recoverPurges } from "../engine/purge.js";
import { parseRoleMapping, type Role } from "../server/roles.js";
import type { TlsFiles } from "../server/tls.js";
import { addPurgeOptions, type PurgeFlags, purgeEnvironment } from "./purge-options.js";

interface ServeFlags extends PurgeFlags {
  queue: string;
  listen: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureLoopback?: boolean;
  role: string[];
  hostname?: string;
  shutdownGrace: string;
}

function tlsFiles(flags: ServeFlags): TlsFiles | undefined {
  const given = { "--tls-ca": flags.tlsCa, "--tls-cert": flags.tlsCert, "--tls-key": flags.tlsKey };
  const missing = Object.entries(given).filter(([, v]) => v === undefined);
  if (missing.length === 3) {
    return undefined;
  }
  if (missing.length > 0) {
    throw new Error(
      `mutual TLS needs --tls-ca, --tls-cert and --tls-key: missing ${missing.map(([k]) => k).join(", ")}`,
    );
  }
  return { ca: flags.tlsCa as string, cert: flags.tlsCert as string, key: flags.tlsKey as string };
}

function log(line: string): void {
  process.stderr.write(`qmfleet-agent: ${line}\n`);
}

async function serve(flags: ServeFlags): Promise<void> {
  const graceSeconds = Number(flags.shutdownGrace);
  if (!(graceSeconds >= 0)) {
    throw new Error(`invalid --shutdown-grace "${flags.shutdownGrace}": expected seconds, e.g. 10`);
  }
  const tls = tlsFiles(flags);
  const roleMap = new Map<string, Role>(flags.role.map(parseRoleMapping));
  const purge = purgeEnvironment(flags.queue, flags);
  // Before serving: a purge a killed agent left midway may have left qmail-send stopped.
  for (const r of await recoverPurges(purge)) {
    log(
      `recovered plan ${r.planId} on ${r.queueRoot}, interrupted (agent pid ${r.agentPid}, started ${r.startedAt}, last step ${r.lastEvent}): ` +
        `${r.removed.length} messages had been removed, ${r.failed.length} failed, ${r.quarantined} copies kept in the quarantine; ${r.qmailSend}` +
        (r.resolved ? "" : " (will try again at the next start)"),
    );
  }
  // Loaded here, not with the bin: `qmfleet-agent local` never needs grpc-js (~0.1 s a start).
  const { startAgentServer } = await import("../server/server.js");
  const { toRpcError } = await import("../server/rpc-error.js");
  const server = await startAgentServer({
    queueRoot: flags.queue,
    listen: flags.listen,
    roleMap,
    purge,
    ...(tls ? { tls } : {}),
    ...(flags.insecureLoopback ? { insecureLoopback: true } : {}),
    ...(flags.hostname ? { hostname: flags.hostname } : {}),
  });
  // A queue that cannot be read is reported on every call; say it now too, where the operator
  // starting the agent looks. The agent keeps running: the queue may be mounted later.
  try {
    detectLayout(server.config.queueRoot);
  } catch (error) {
    log(`warning: ${toRpcError(error).message}`);
  }
  // Last: supervisors and tests take this line as "ready".
  const security = tls ? "mutual TLS" : "PLAINTEXT, loopback only, read role only: development use";
  log(`serving queue ${server.config.queueRoot} on ${server.address} (${security})`);

  let signals = 0;
  const stop = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log(`${signal} again: exiting without waiting for calls in flight`);
      process.exit(1);
    }
    log(`${signal}: stopping, letting calls in flight finish (up to ${graceSeconds}s)`);
    const changes = server.config.changes.count;
    if (changes > 0) {
      log(`waiting for ${changes} change(s) to the queue in progress to end (${signal} again to exit now)`);
    }
    server.shutdown(graceSeconds * 1000).then(() => {
      purge.audit?.close();
      log("stopped");
      process.exit(0);
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

const SERVE_HELP = `
Clients must present a certificate signed by --tls-ca. Its role decides what it may do:
  read   agent info, statistics, listings, summaries, reading messages, checks, quarantine list
  admin  everything read may, and purge (preview and execute), retry sooner, send now, restore
The role is the certificate's OU (OU=read or OU=admin), unless --role maps its CN. A certificate
with neither is refused (PERMISSION_DENIED). Every call must carry a deadline.

Every change is written to the audit log: who (the client certificate's CN), why (the reason
given), the filter, the plan, each message's outcome, qmail-send's downtime. At start the agent
looks for purges a killed agent left midway and starts qmail-send again if one had stopped it.
On SIGTERM it waits for purges in progress to end.

Example:
  qmfleet-agent serve --queue /var/qmail/queue --listen 0.0.0.0:7001 \\
    --tls-ca /etc/qmfleet/ca.crt --tls-cert /etc/qmfleet/agent.crt --tls-key /etc/qmfleet/agent.key`;

export function registerServeCommand(program: Command): void {
  const command = program
    .command("serve")
    .description("serve this host's qmail queue to qmfleet controllers over gRPC with mutual TLS")
    .option("--queue <dir>", "queue root", "/var/qmail/queue")
    .requiredOption("--listen <host:port>", "address to listen on, e.g. 0.0.0.0:7001 or [::]:7001")
    .option("--tls-ca <file>", "CA certificate (PEM) that client certificates must chain to")
    .option("--tls-cert <file>", "this agent's certificate (PEM)")
    .option("--tls-key <file>", "this agent's private key (PEM)")
    .option(
      "--insecure-loopback",
      "development only: plaintext, loopback listen address, read role for every caller",
    )
    .option(
      "--role <CN=ROLE>",
      "grant ROLE (read|admin) to client certificates with this CN, overriding their OU (repeatable)",
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .option("--hostname <name>", "host name reported to controllers (default: this machine's)")
    .option("--shutdown-grace <seconds>", "on SIGTERM/SIGINT, how long calls in flight may finish", "10");
  addPurgeOptions(command).addHelpText("after", SERVE_HELP).action(serve);
}
