// Real qmfleet-agent and qmfleet processes for end-to-end tests and the demo. From the
// TypeScript sources (tests: no build needed) or from the built dist/ (the demo, as a user runs it).

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { FleetCertificates, KeyPairFiles } from "../certs.js";

/** The repository root: this file is test/src/e2e/ or test/dist/e2e/. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** source: TypeScript through tsx, workspace packages resolved to their sources. dist: the build. */
export type Entry = "source" | "dist";

function nodeArgs(entry: Entry, pkg: "agent" | "cli", bin: string): string[] {
  return entry === "source"
    ? ["--conditions=qmfleet-source", "--import", "tsx", join(REPO_ROOT, pkg, "src", "bin", `${bin}.ts`)]
    : [join(REPO_ROOT, pkg, "dist", "bin", `${bin}.js`)];
}

export interface AgentProcess {
  /** host:port to dial, e.g. localhost:41234. */
  address: string;
  port: number;
  process: ChildProcess;
  /** Everything the agent wrote to stderr so far. */
  log(): string;
  /** SIGTERM, then the exit: the exit code (null if killed by a signal). */
  stop(): Promise<number | null>;
}

export interface AgentProcessOptions {
  queue: string;
  /** Default localhost:0 (a free port). */
  listen?: string;
  /** Mutual TLS with the fleet CA and the agent certificate; omit for --insecure-loopback tests. */
  certs?: FleetCertificates;
  extraArgs?: string[];
  entry?: Entry;
  /** A command the agent is started through, e.g. ["setpriv", "--bounding-set=-dac_override"]. */
  wrapper?: string[];
  /** The agent's plans, journal, lock and audit log; default agent-state/ beside the queue. */
  stateDir?: string;
}

/** The command line `qmfleet-agent serve` gets for these options. */
export function agentServeArgs(options: AgentProcessOptions): string[] {
  const tls = options.certs
    ? [
        "--tls-ca",
        options.certs.ca.cert,
        "--tls-cert",
        options.certs.server.cert,
        "--tls-key",
        options.certs.server.key,
      ]
    : [];
  return [
    "serve",
    "--queue",
    options.queue,
    "--listen",
    options.listen ?? "localhost:0",
    // Never the machine's own /var/lib/qmfleet: a test's files stay in its directory.
    "--state-dir",
    options.stateDir ?? join(dirname(options.queue), "agent-state"),
    ...tls,
    ...(options.extraArgs ?? []),
  ];
}

/** Runs `qmfleet-agent serve` and resolves once it listens (or rejects with its stderr if it exits). */
export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const [command = process.execPath, ...prefix] = [...(options.wrapper ?? []), process.execPath];
  const args = [
    ...prefix,
    ...nodeArgs(options.entry ?? "source", "agent", "qmfleet-agent"),
    ...agentServeArgs(options),
  ];
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] });
  // Never outlive the process that started the agent, even when it dies of an exception.
  const reap = () => child.kill("SIGTERM");
  process.once("exit", reap);
  let stderr = "";
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  exited.then(() => process.off("exit", reap));
  const address = await new Promise<string>((resolve, reject) => {
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      stderr += chunk;
      const match = / on (\S+) \((?:mutual TLS|PLAINTEXT)/.exec(stderr);
      if (match?.[1]) {
        resolve(match[1]);
      }
    });
    exited.then(([code, signal]) =>
      reject(new Error(`qmfleet-agent exited (${code ?? signal}) before listening:\n${stderr}`)),
    );
  });
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  return {
    address,
    port,
    process: child,
    log: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
      }
      const [code] = await exited;
      return code;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `qmfleet ARGS` to completion. */
export async function runCli(args: string[], entry: Entry = "source"): Promise<CliResult> {
  const child = spawn(process.execPath, [...nodeArgs(entry, "cli", "qmfleet"), ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const [code] = (await once(child, "close")) as [number | null];
  return { code, stdout, stderr };
}

export interface InventoryHostSpec {
  name: string;
  address: string;
  tags?: string[];
}

/**
 * Writes an inventory YAML at `file` for these hosts, presenting `client` (default: the operator's
 * certificate); TLS paths are written relative to the file, as an admin would.
 */
export async function writeInventory(
  file: string,
  certs: FleetCertificates,
  hosts: InventoryHostSpec[],
  client: KeyPairFiles = certs.operator,
): Promise<string> {
  const rel = (path: string) => relative(dirname(file), path);
  const doc = {
    tls: { ca: rel(certs.ca.cert), cert: rel(client.cert), key: rel(client.key) },
    hosts: hosts.map((h) => ({ name: h.name, address: h.address, tags: h.tags ?? [] })),
  };
  await writeFile(file, stringify(doc));
  return file;
}

/** A loopback port with nothing listening on it (an agent that is down). */
export async function closedLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
