// What every qmfleet action (qmHandle flag) is handed, and what it gives back.

import type { AgentClients, InventoryHost } from "@qmfleet/controller";
import type { OutputFormat } from "../render.js";

export interface Output {
  /** false: the text is queued and the caller should wait for "drain" (a pipe that is slow to read). */
  write(text: string): unknown;
  once?(event: "drain", listener: () => void): unknown;
  off?(event: "drain", listener: () => void): unknown;
}

export interface ErrorOutput extends Output {
  /** Progress lines are shown only to a person watching a terminal. */
  isTTY?: boolean;
}

export interface ActionContext {
  hosts: InventoryHost[];
  clients: AgentClients;
  format: OutputFormat;
  /** Per-host deadline. */
  timeoutMs: number;
  concurrency: number;
  /** Aborted on SIGINT: calls in flight are cancelled. */
  signal: AbortSignal;
  stdout: Output;
  stderr: ErrorOutput;
}

/**
 * An action's result: how many targeted hosts did not end ok, and the exit status the action
 * asks for when it is not the default (0, or 2 when a host did not end ok).
 */
export interface ActionResult {
  hostsNotOk: number;
  status?: number;
}

export type Action = (ctx: ActionContext) => Promise<ActionResult>;
