// Purge plans saved between the two steps (`qmfleet ... --plan-file F` previews and saves;
// `qmfleet --plan-file F --yes` executes exactly those plans later, before they expire). The file
// names each host's plan id; the plans themselves stay on the agents, bound to their queues, so
// the file cannot widen a purge: an agent runs only a plan it made, once.

import { readFile, writeFile } from "node:fs/promises";
import type { PlanSummary } from "@qmfleet/proto";
import type { HostOutcome } from "./fanout.js";
import type { InventoryHost } from "./inventory.js";

const FORMAT = "qmfleet-purge-plans/1";

interface SavedHost {
  name: string;
  address: string;
  plan: Omit<PlanSummary, "sample">;
}

interface SavedPlans {
  format: string;
  filter: string;
  createdAt: string;
  hosts: SavedHost[];
}

/** A plan file that cannot be used; the message names the file and what is wrong. */
export class PlanFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlanFileError";
  }
}

/** Saves the plans of the hosts whose preview succeeded (the sample is left out). */
export async function savePlans(
  file: string,
  filter: string,
  previews: readonly HostOutcome<PlanSummary>[],
): Promise<void> {
  const doc: SavedPlans = {
    format: FORMAT,
    filter,
    createdAt: new Date().toISOString(),
    hosts: previews.flatMap((o) => {
      if (o.state !== "ok" || !o.value) return [];
      const { sample: _sample, ...plan } = o.value;
      return [{ name: o.host.name, address: o.host.address, plan }];
    }),
  };
  await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
}

/**
 * The saved plans as the previews they came from, each host taken from the inventory: a host
 * the inventory no longer has, or has at another address, is refused.
 */
export async function loadPlans(
  file: string,
  inventory: readonly InventoryHost[],
): Promise<{ filter: string; previews: HostOutcome<PlanSummary>[] }> {
  let doc: SavedPlans;
  try {
    doc = JSON.parse(await readFile(file, "utf8")) as SavedPlans;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new PlanFileError(`cannot read plan file ${file}: ${why}`);
  }
  if (doc?.format !== FORMAT || !Array.isArray(doc.hosts)) {
    throw new PlanFileError(`${file} is not a qmfleet plan file (made by qmfleet --plan-file)`);
  }
  const previews = doc.hosts.map((saved): HostOutcome<PlanSummary> => {
    const host = inventory.find((h) => h.name === saved.name);
    if (!host) throw new PlanFileError(`plan file ${file}: host ${saved.name} is not in the inventory`);
    if (host.address !== saved.address) {
      throw new PlanFileError(
        `plan file ${file}: host ${saved.name} was previewed at ${saved.address}, the inventory now says ${host.address}: preview again`,
      );
    }
    return { host, state: "ok", value: { ...saved.plan, sample: [] }, elapsedMs: 0 };
  });
  return { filter: String(doc.filter), previews };
}
