// qmfleet --check: every host's queue problems, one per row as they arrive.

import type { HostOutcome } from "@qmfleet/controller";
import type { QueueProblem } from "@qmfleet/proto";
import { hostJson } from "../actions/host-report.js";
import type { OutputFormat } from "../render.js";
import { renderCsvRow, renderNdjsonLine } from "../render.js";
import { fitWidth, oneLine } from "../text-width.js";

export interface CheckView {
  begin(): string;
  problem(host: string, p: QueueProblem): string;
  host(outcome: HostOutcome<unknown>): string;
  end(hosts: readonly HostOutcome<unknown>[], count: number): string;
}

const record = (host: string, p: QueueProblem) => ({
  host,
  kind: p.kind,
  path: p.path,
  id: p.id,
  detail: p.detail,
});

export function checkView(format: OutputFormat, hostNames: readonly string[]): CheckView {
  const hostWidth = Math.max(4, ...hostNames.map((n) => n.length));
  switch (format) {
    case "table":
      return {
        begin: () => "",
        problem: (host, p) => `${fitWidth(host, hostWidth)}  ${fitWidth(p.kind, 20)}  ${oneLine(p.detail)}\n`,
        host: () => "",
        end: (hosts, count) => {
          const ok = hosts.filter((h) => h.state === "ok").length;
          return count === 0
            ? `no problems found on ${ok}/${hosts.length} hosts that answered\n`
            : `${count} problems on ${ok}/${hosts.length} hosts that answered\n`;
        },
      };
    case "json": {
      let first = true;
      return {
        begin: () => '{"problems":[',
        problem: (host, p) => {
          const text = `${first ? "\n" : ",\n"}${JSON.stringify(record(host, p))}`;
          first = false;
          return text;
        },
        host: () => "",
        end: (hosts, count) =>
          `${first ? "" : "\n"}],\n"hosts":${JSON.stringify(hosts.map(hostJson))},\n"count":${count}}\n`,
      };
    }
    case "ndjson":
      return {
        begin: () => "",
        problem: (host, p) => renderNdjsonLine({ kind: "problem", problem: record(host, p) }),
        host: (outcome) => renderNdjsonLine({ kind: "host", ...hostJson(outcome) }),
        end: (hosts, count) =>
          renderNdjsonLine({
            kind: "total",
            count,
            hosts: hosts.length,
            notOk: hosts.filter((h) => h.state !== "ok").length,
          }),
      };
    case "csv":
      return {
        begin: () => renderCsvRow(["host", "kind", "path", "id", "detail"]),
        problem: (host, p) => renderCsvRow([host, p.kind, p.path, p.id, p.detail]),
        host: () => "",
        end: () => "",
      };
  }
}
