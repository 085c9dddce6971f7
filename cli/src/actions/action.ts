// What every qmfleet action (qmHandle flag) is handed, and what it gives back.

import type { AgentClients, InventoryHost } from "@qmfleet/controller";
import type { OutputFormat } from "../render.js";

export interface Output {
  write(text: string): unknown;
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

/** An action's result: how many targeted hosts did not end ok. */
export type Action = (ctx: ActionContext) => Promise<{ hostsNotOk: number }>;
