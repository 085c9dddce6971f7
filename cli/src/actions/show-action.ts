// -m HOST:ID[:FINGERPRINT]: one message of one host. Ids are inode numbers, so each host has its
// own: an id alone is accepted only when exactly one host is targeted. With the fingerprint a
// listing gave, the agent refuses to show another message that got the id since.

import { type HostOutcome, type InventoryHost, readFleetMessage } from "@qmfleet/controller";
import { emit } from "../output.js";
import { UsageError } from "../usage-error.js";
import { Base64Stream, detailJsonEnd, detailJsonStart, detailText, RawText } from "../views/show-view.js";
import type { Action, ActionContext } from "./action.js";
import { hostReporter, hostsResult } from "./host-report.js";

export interface MessageTarget {
  host?: string;
  id: string;
  fingerprint?: string;
}

// HOST:ID, ID, and either followed by :FINGERPRINT (itself SIZE:HASH, as listings print it).
const REF = /^(?:([^:\s]+):)??(\d+)(?::(\d+:[0-9a-f]+))?$/;

/** Parses what -m was given; undefined when it is not HOST:ID[:FINGERPRINT] or ID. */
export function parseMessageTarget(text: string): MessageTarget | undefined {
  const match = REF.exec(text.trim());
  if (!match) return undefined;
  const [, host, id, fingerprint] = match;
  return {
    id: id as string,
    ...(host !== undefined ? { host } : {}),
    ...(fingerprint !== undefined ? { fingerprint } : {}),
  };
}

function targetHost(ctx: ActionContext, typed: string, target: MessageTarget): InventoryHost {
  if (target.host === undefined) {
    const [only, ...others] = ctx.hosts;
    if (only && others.length === 0) return only;
    throw new UsageError(
      `-m ${typed}: which host? ${ctx.hosts.length} hosts are targeted and each numbers its own messages ` +
        `(ids are inode numbers): write -m HOST:${target.id}, e.g. -m ${ctx.hosts[0]?.name ?? "mx1"}:${target.id}, or target one host with --hosts`,
    );
  }
  const host = ctx.hosts.find((h) => h.name === target.host);
  if (!host) {
    throw new UsageError(
      `-m ${typed}: no host ${target.host} among the targeted hosts (${ctx.hosts.map((h) => h.name).join(", ")})`,
    );
  }
  return host;
}

export function showAction(typed: string, maxBytes: number, fingerprint: string | undefined): Action {
  const target = parseMessageTarget(typed);
  if (!target) {
    throw new UsageError(`-m "${typed}": expected HOST:ID (or HOST:ID:FINGERPRINT, as --json listings give)`);
  }
  if (fingerprint !== undefined && target.fingerprint !== undefined && fingerprint !== target.fingerprint) {
    throw new UsageError(
      `-m ${typed} and --fingerprint ${fingerprint} name two different messages: give one`,
    );
  }
  const wanted = fingerprint ?? target.fingerprint ?? "";
  return async (ctx) => {
    if (ctx.format === "csv" || ctx.format === "ndjson") {
      throw new UsageError(
        `-m shows one message: use the default table or --json, not --format ${ctx.format}`,
      );
    }
    const host = targetHost(ctx, typed, target);
    const now = Math.floor(Date.now() / 1000);
    const json = ctx.format === "json";
    const raw = json ? new Base64Stream() : new RawText();
    let detailSent = false;
    let size = 0;
    let shown = 0;
    const outcome: HostOutcome<number> = await readFleetMessage(
      host,
      ctx.clients,
      { id: target.id, fingerprint: wanted },
      maxBytes,
      {
        onDetail: async (detail) => {
          detailSent = true;
          size = detail.summary?.size ?? 0;
          await emit(
            ctx,
            json ? detailJsonStart(host.name, detail, now) : detailText(host.name, detail, now),
          );
        },
        onChunk: (chunk) => {
          shown += chunk.length;
          return emit(ctx, raw.chunk(chunk));
        },
      },
      { timeoutMs: ctx.timeoutMs, signal: ctx.signal },
    );
    hostReporter(ctx)(outcome);
    if (raw instanceof Base64Stream) {
      await emit(ctx, (detailSent ? raw.end() : "") + detailJsonEnd(outcome, shown, detailSent));
    } else if (detailSent) {
      await emit(ctx, raw.end(shown, size));
    }
    return hostsResult([outcome]);
  };
}
