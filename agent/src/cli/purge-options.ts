// The options both commands that change a queue share (`serve` and `local`): where the agent
// keeps its own files (plans, journal, lock, audit log), where purged messages are kept, and how
// qmail-send is stopped and started for a stopped purge. Every one has a default that fits a
// stock qmail host, so neither command needs configuration there: qmail-send itself is found
// through lock/sendmutex, and how to stop and start it is learnt from how it runs (qmail-send.ts).

import * as path from "node:path";
import { type Command, Option } from "commander";
import { AuditLog } from "../engine/audit.js";
import type { PurgeEnvironment } from "../engine/purge.js";
import { DEFAULT_QMAIL_SEND_CONFIG, type QmailSendConfig } from "../engine/qmail-send.js";

export const DEFAULT_STATE_DIR = "/var/lib/qmfleet";

export interface PurgeFlags {
  stateDir: string;
  auditLog?: string;
  quarantineDir?: string;
  quarantineDays: string;
  qmailSendStop: string;
  qmailSendStart: string;
  stopTimeout: string;
  escalate: QmailSendConfig["escalate"];
  qmailQueue?: string;
}

/** A command line that cannot run; the message names the flag and what it expects. */
export class PurgeOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PurgeOptionError";
  }
}

export function addPurgeOptions(command: Command): Command {
  return command
    .option("--state-dir <dir>", "the agent's plans, journal, lock and audit log", DEFAULT_STATE_DIR)
    .option("--audit-log <file>", "audit log of every change (default: <state-dir>/audit.log)")
    .option(
      "--quarantine-dir <dir>",
      "where purged messages are kept, on the queue's file system (default: <qmail home>/qmfleet-quarantine)",
    )
    .option("--quarantine-days <n>", "quarantined messages are removed after this many days", "14")
    .option(
      "--qmail-send-stop <command>",
      "how a stopped purge stops qmail-send: auto (its supervisor, systemd unit, or TERM), signal (TERM), or a command such as 'svc -d /service/qmail-send' (split on spaces, no shell)",
      "auto",
    )
    .option(
      "--qmail-send-start <command>",
      "how it is started again: auto, none (by hand), or a command such as 'svc -u /service/qmail-send'",
      "auto",
    )
    .option("--stop-timeout <seconds>", "how long qmail-send may take to stop before escalating", "30")
    .addOption(
      new Option(
        "--escalate <how>",
        "when qmail-send has not stopped in time: TERM its deliveries then KILL it, or give up and leave it running",
      )
        .choices(["children-then-kill", "none"])
        .default("children-then-kill"),
    )
    .option(
      "--qmail-queue <path>",
      "qmail-queue, for restoring quarantined messages (default: <qmail home>/bin/qmail-queue)",
    );
}

function commandOf(flag: string, value: string): string[] {
  const argv = value.trim().split(/\s+/);
  if (argv[0] === undefined || argv[0] === "") {
    throw new PurgeOptionError(`${flag} is empty: give auto, or the command to run`);
  }
  return argv;
}

function wholeNumber(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!(Number.isSafeInteger(n) && n >= min)) {
    throw new PurgeOptionError(`${flag} "${value}": expected a whole number of at least ${min}`);
  }
  return n;
}

/** qmail-send control from the flags, on the engine's defaults. */
export function qmailSendConfig(queueRoot: string, flags: PurgeFlags): QmailSendConfig {
  const stop = flags.qmailSendStop.trim();
  const start = flags.qmailSendStart.trim();
  return {
    ...DEFAULT_QMAIL_SEND_CONFIG,
    stop: stop === "auto" ? "auto" : stop === "signal" ? "signal" : commandOf("--qmail-send-stop", stop),
    start: start === "auto" ? "auto" : start === "none" ? null : commandOf("--qmail-send-start", start),
    stopTimeoutMs: wholeNumber("--stop-timeout", flags.stopTimeout, 1) * 1000,
    escalate: flags.escalate,
    // qmail's programs sit beside its queue: /var/qmail/bin beside /var/qmail/queue.
    qmailQueue: flags.qmailQueue ?? path.join(path.dirname(path.resolve(queueRoot)), "bin", "qmail-queue"),
  };
}

/**
 * Everything a purge needs on this host, the audit log opened (its directory created) unless
 * `audit` is false: a run that only reads (a quarantine listing) must not create files.
 */
export function purgeEnvironment(
  queueRoot: string,
  flags: PurgeFlags,
  { audit: withAudit = true }: { audit?: boolean } = {},
): PurgeEnvironment {
  const qmailSend = qmailSendConfig(queueRoot, flags);
  const quarantineRetentionDays = wholeNumber("--quarantine-days", flags.quarantineDays, 1);
  const stateDir = path.resolve(flags.stateDir);
  const auditFile = flags.auditLog ? path.resolve(flags.auditLog) : path.join(stateDir, "audit.log");
  let audit: AuditLog | undefined;
  try {
    if (withAudit) audit = new AuditLog(auditFile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new PurgeOptionError(
      `cannot open the audit log ${auditFile}: ${code} (run as root, or give --state-dir / --audit-log a place this user can write)`,
    );
  }
  return {
    queueRoot: path.resolve(queueRoot),
    stateDir,
    qmailSend,
    quarantineRetentionDays,
    ...(flags.quarantineDir ? { quarantineDir: path.resolve(flags.quarantineDir) } : {}),
    ...(audit ? { audit } : {}),
  };
}
