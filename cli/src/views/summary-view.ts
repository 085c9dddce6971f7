// qmfleet --summary: what fills the fleet's queues. Top groups per dimension (merged across
// hosts), then the qshape table (recipient domain x age in minutes), in every output format.

import type { FleetSummary } from "@qmfleet/controller";
import { GroupBy } from "@qmfleet/proto";
import { hostJson } from "../actions/host-report.js";
import { renderCsv, renderJson, renderNdjsonLine } from "../render.js";
import { displayWidth, fitWidth, oneLine, padStartWidth } from "../text-width.js";

const DIMENSION: Record<number, { name: string; title: string }> = {
  [GroupBy.GROUP_BY_SENDER]: { name: "sender", title: "Top senders" },
  [GroupBy.GROUP_BY_RECIPIENT_DOMAIN]: { name: "recipientDomain", title: "Top recipient domains" },
  [GroupBy.GROUP_BY_SUBJECT]: { name: "subject", title: "Top subjects" },
  [GroupBy.GROUP_BY_CLIENT_IP]: { name: "clientIp", title: "Top client IPs" },
};

const dimensionName = (by: GroupBy) => DIMENSION[by]?.name ?? String(by);

/** What a key is called in a table: <> for the null sender, (none) for an empty key. */
function keyText(by: GroupBy, key: string): string {
  if (key === "") return by === GroupBy.GROUP_BY_SENDER ? "<>" : "(none)";
  return oneLine(key);
}

const KEY_WIDTH = 60;

function hostsLine(summary: FleetSummary): string {
  const ok = summary.hosts.filter((h) => h.state === "ok").length;
  return `${summary.matched} messages, ${summary.matchedBytes} bytes, on ${ok}/${summary.hosts.length} hosts that answered\n`;
}

export function summaryTable(summary: FleetSummary): string {
  let out = hostsLine(summary);
  for (const by of Object.keys(DIMENSION).map(Number) as GroupBy[]) {
    const groups = summary.groups.filter((g) => g.by === by);
    if (groups.length === 0) continue;
    const approximate = summary.approximate.includes(by)
      ? " (approximate: each host reports its top groups only, counts may be low)"
      : "";
    out += `\n${DIMENSION[by]?.title}${approximate}:\n`;
    const countWidth = Math.max(5, ...groups.map((g) => String(g.count).length));
    const bytesWidth = Math.max(5, ...groups.map((g) => String(g.bytes).length));
    out += `  ${"count".padStart(countWidth)}  ${"bytes".padStart(bytesWidth)}  hosts  key\n`;
    for (const g of groups) {
      out +=
        `  ${String(g.count).padStart(countWidth)}  ${String(g.bytes).padStart(bytesWidth)}  ` +
        `${String(g.hosts).padStart(5)}  ${fitWidth(keyText(by, g.key), KEY_WIDTH).trimEnd()}\n`;
    }
  }
  if (summary.shape) {
    const { bucketLabels, rows, approximate } = summary.shape;
    const domainWidth = Math.min(40, Math.max(6, ...rows.map((r) => displayWidth(oneLine(r.domain)))));
    const cells = (values: (string | number)[]) => values.map((v) => String(v).padStart(6)).join("");
    out += `\nqshape: messages by recipient domain and age in minutes${approximate ? " (approximate: domain counts may be low)" : ""}\n`;
    out += `${" ".repeat(domainWidth)}${cells(["T", ...bucketLabels])}\n`;
    for (const row of rows) {
      const domain = oneLine(row.domain) || "(none)";
      const cut = displayWidth(domain) > domainWidth ? fitWidth(domain, domainWidth) : domain;
      out += `${padStartWidth(cut, domainWidth)}${cells([row.total, ...row.counts])}\n`;
    }
  }
  return out;
}

function groupsByDimension(summary: FleetSummary) {
  const out: Record<string, { key: string; count: number; bytes: number; hosts: number }[]> = {};
  for (const g of summary.groups) {
    const name = dimensionName(g.by);
    out[name] = [...(out[name] ?? []), { key: g.key, count: g.count, bytes: g.bytes, hosts: g.hosts }];
  }
  return out;
}

function document(summary: FleetSummary) {
  return {
    hosts: summary.hosts.map(hostJson),
    matched: summary.matched,
    matchedBytes: summary.matchedBytes,
    groups: groupsByDimension(summary),
    approximate: summary.approximate.map(dimensionName),
    ...(summary.shape ? { shape: summary.shape } : {}),
  };
}

export function summaryJson(summary: FleetSummary): string {
  return renderJson(document(summary));
}

/** After the per-host lines written as hosts answer: the merged summary on one line. */
export function summaryNdjson(summary: FleetSummary): string {
  const { hosts: _hosts, ...rest } = document(summary);
  return renderNdjsonLine({ kind: "summary", ...rest });
}

export function summaryCsv(summary: FleetSummary): string {
  return renderCsv(
    ["dimension", "key", "count", "bytes", "hosts"],
    summary.groups.map((g) => [dimensionName(g.by), g.key, g.count, g.bytes, g.hosts]),
  );
}
