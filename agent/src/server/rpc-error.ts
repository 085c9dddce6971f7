// Every failure an RPC can return, as a gRPC status with a message that names what was wrong and
// what to do. Handlers throw RpcError for conditions they recognise; anything else (an errno from
// the file system, a bug) goes through toRpcError so the caller never sees a bare "Internal".

import { status } from "@grpc/grpc-js";
import { AgentLockBusyError } from "../engine/agent-lock.js";
import { FilterError } from "../engine/filter.js";
import { QueueAccessError } from "../engine/layout.js";
import { PlanError } from "../engine/plan.js";
import { QmailSendControlError } from "../engine/qmail-send.js";
import { QuarantineRefusedError } from "../engine/quarantine.js";
import { FingerprintMismatchError, MessageIdError, MessageNotFoundError } from "../engine/show.js";

export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

// Reading the queue needs root, or uid qmails + gid qmail (qmail-queue.md §1): say so, since an
// agent started as an ordinary user is the usual cause.
const PERMISSION_HINT = "run the agent as root or as qmails";

/** Maps any thrown value to an RpcError; errno errors keep the path they failed on. */
export function toRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) {
    return error;
  }
  // A filter or id the caller sent that cannot be used: the message names it and what is wrong.
  if (error instanceof FilterError || error instanceof MessageIdError) {
    return new RpcError(status.INVALID_ARGUMENT, error.message);
  }
  if (error instanceof MessageNotFoundError) {
    return new RpcError(status.NOT_FOUND, error.message);
  }
  // The id names another message than the one the caller listed (inode reuse).
  if (error instanceof FingerprintMismatchError) {
    return new RpcError(status.FAILED_PRECONDITION, error.message);
  }
  // Another purge, restore or retry holds this queue: try again once it is over.
  if (error instanceof AgentLockBusyError) {
    return new RpcError(status.ABORTED, error.message);
  }
  // A plan unknown, expired, for another queue or already run; quarantine refused; qmail-send
  // that cannot be stopped or started: nothing was changed, and the message says what to do.
  if (
    error instanceof PlanError ||
    error instanceof QuarantineRefusedError ||
    error instanceof QmailSendControlError
  ) {
    return new RpcError(status.FAILED_PRECONDITION, error.message);
  }
  // The engine's own errors already name the path and the fix.
  if (error instanceof QueueAccessError) {
    const exhausted = error.code === "EMFILE" || error.code === "ENFILE" || error.code === "ENOMEM";
    return new RpcError(exhausted ? status.RESOURCE_EXHAUSTED : status.FAILED_PRECONDITION, error.message);
  }
  const e = error as NodeJS.ErrnoException;
  const where = e.path ? ` ${e.path}` : "";
  switch (e.code) {
    case "EACCES":
    case "EPERM":
      return new RpcError(status.FAILED_PRECONDITION, `cannot read${where}: ${e.code} (${PERMISSION_HINT})`);
    case "ENOENT":
      return new RpcError(
        status.FAILED_PRECONDITION,
        `cannot read${where}: ENOENT (is the queue root right? check --queue)`,
      );
    case "ENOTDIR":
      return new RpcError(
        status.FAILED_PRECONDITION,
        `cannot read${where}: ENOTDIR (not a qmail queue directory)`,
      );
    case "EMFILE":
    case "ENFILE":
    case "ENOMEM":
      return new RpcError(
        status.RESOURCE_EXHAUSTED,
        `cannot read${where}: ${e.code} (the agent is out of resources)`,
      );
    default:
      if (e.code) {
        return new RpcError(status.INTERNAL, `cannot read${where}: ${e.code}: ${e.message}`);
      }
      return new RpcError(status.INTERNAL, e instanceof Error ? e.message : String(error));
  }
}
