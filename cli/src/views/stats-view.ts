// qmfleet -s: one row per host and a fleet total, in every output format.

import { type FleetStats, type HostOutcome, STATS_COUNT_KEYS } from "@qmfleet/controller";
import type { QueueStats } from "@qmfleet/proto";
import { type Column, renderCsv, renderJson, renderNdjsonLine, renderTable } from "../render.js";

// Every output lists the counters in this order (the wire decoder's order differs).
const STAT_FIELDS: readonly (keyof QueueStats)[] = [
  ...STATS_COUNT_KEYS,
  "oldestBirthUnix",
  "oldestAgeSeconds",
];

function ordered(stats: QueueStats): QueueStats {
  return Object.fromEntries(STAT_FIELDS.map((k) => [k, stats[k]])) as unknown as QueueStats;
}

/** A host as the JSON and NDJSON outputs show it. */
export interface HostStatsRecord {
  name: string;
  state: string;
  error?: string;
  stats?: QueueStats;
}

export function hostRecord(outcome: HostOutcome<QueueStats>): HostStatsRecord {
  return {
    name: outcome.host.name,
    state: outcome.state,
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    ...(outcome.value ? { stats: ordered(outcome.value) } : {}),
  };
}

/** "45s", "12m 3s", "3h 12m", "6d 23h": the two largest units are enough to judge a queue. */
export function formatAge(seconds: number): string {
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  let rest = Math.max(0, Math.floor(seconds));
  const parts: string[] = [];
  for (const [unit, size] of units) {
    if (rest >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) {
      break;
    }
  }
  return parts.join(" ");
}

const COLUMNS: readonly Column[] = [
  { title: "host", align: "left" },
  { title: "state", align: "left" },
  { title: "messages", align: "right" },
  { title: "not preprocessed", align: "right" },
  { title: "local", align: "right" },
  { title: "remote", align: "right" },
  { title: "bouncing", align: "right" },
  { title: "bytes", align: "right" },
  { title: "oldest age", align: "right" },
];

function statCells(stats: QueueStats | undefined): string[] {
  if (!stats) {
    return ["-", "-", "-", "-", "-", "-", "-"];
  }
  return [
    String(stats.messagesInQueue),
    String(stats.notPreprocessed),
    String(stats.withLocal),
    String(stats.withRemote),
    String(stats.bouncing),
    String(stats.bytes),
    stats.messagesInQueue > 0 ? formatAge(stats.oldestAgeSeconds) : "-",
  ];
}

function totalState(fleet: FleetStats): string {
  return `${fleet.hosts.length - fleet.notOk}/${fleet.hosts.length} ok`;
}

export function statsTable(fleet: FleetStats): string {
  const rows = fleet.hosts.map((o) => [o.host.name, o.state, ...statCells(o.value)]);
  rows.push(["TOTAL", totalState(fleet), ...statCells(fleet.total)]);
  return renderTable(COLUMNS, rows);
}

export function statsJson(fleet: FleetStats): string {
  return renderJson({ hosts: fleet.hosts.map(hostRecord), total: ordered(fleet.total) });
}

/** One line per host as it answers (write them as they come), then the total. */
export function statsNdjsonHost(outcome: HostOutcome<QueueStats>): string {
  return renderNdjsonLine({ kind: "host", ...hostRecord(outcome) });
}

export function statsNdjsonTotal(fleet: FleetStats): string {
  return renderNdjsonLine({
    kind: "total",
    hosts: fleet.hosts.length,
    notOk: fleet.notOk,
    stats: fleet.total,
  });
}

export function statsCsv(fleet: FleetStats): string {
  const row = (name: string, state: string, error: string, stats: QueueStats | undefined) => [
    name,
    state,
    error,
    ...STAT_FIELDS.map((k) => (stats ? stats[k] : "")),
  ];
  return renderCsv(
    ["host", "state", "error", ...STAT_FIELDS],
    [
      ...fleet.hosts.map((o) => row(o.host.name, o.state, o.error ?? "", o.value)),
      row("TOTAL", totalState(fleet), "", fleet.total),
    ],
  );
}
