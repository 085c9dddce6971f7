import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FleetStats } from "@qmfleet/controller";
import type { QueueStats } from "@qmfleet/proto";
import { formatAge, statsCsv, statsJson, statsNdjsonHost, statsTable } from "./stats-view.js";

// Keys in the order the wire decoder gives them (preprocessed, field 10, last).
function stats(messages: number, age: number): QueueStats {
  return {
    messagesInQueue: messages,
    notPreprocessed: 1,
    withLocal: 2,
    withRemote: messages - 3,
    bouncing: 1,
    beingWritten: 0,
    bytes: messages * 1000,
    oldestBirthUnix: 1_700_000_000 - age,
    oldestAgeSeconds: age,
    preprocessed: messages - 1,
  };
}

const FLEET: FleetStats = {
  hosts: [
    {
      host: { name: "mx1", address: "localhost:1", tags: [] },
      state: "ok",
      value: stats(1200, 3 * 86_400 + 7200),
      elapsedMs: 5,
    },
    {
      host: { name: "mx2", address: "localhost:2", tags: [] },
      state: "unreachable",
      error: "UNAVAILABLE: connect ECONNREFUSED",
      elapsedMs: 1,
    },
    {
      host: { name: "mx3", address: "localhost:3", tags: [] },
      state: "ok",
      value: stats(30, 59),
      elapsedMs: 4,
    },
  ],
  total: { ...stats(1230, 3 * 86_400 + 7200), notPreprocessed: 2, withLocal: 4, bouncing: 2 },
  notOk: 1,
};

describe("formatAge", () => {
  it("shows the two largest units", () => {
    assert.equal(formatAge(0), "0s");
    assert.equal(formatAge(59), "59s");
    assert.equal(formatAge(723), "12m 3s");
    assert.equal(formatAge(3 * 3600 + 12 * 60 + 5), "3h 12m");
    assert.equal(formatAge(6 * 86_400 + 23 * 3600 + 59), "6d 23h");
    assert.equal(formatAge(86_400 + 5), "1d 5s");
  });
});

describe("stats views", () => {
  it("lays out a table with every host and the fleet total", () => {
    assert.equal(
      statsTable(FLEET),
      [
        "host   state        messages  not preprocessed  local  remote  bouncing    bytes  oldest age",
        "mx1    ok               1200                 1      2    1197         1  1200000       3d 2h",
        "mx2    unreachable         -                 -      -       -         -        -           -",
        "mx3    ok                 30                 1      2      27         1    30000         59s",
        "TOTAL  2/3 ok           1230                 2      4    1227         2  1230000       3d 2h",
        "",
      ].join("\n"),
    );
  });

  it("writes exactly one JSON document with hosts and total", () => {
    const doc = JSON.parse(statsJson(FLEET));
    assert.deepEqual(Object.keys(doc), ["hosts", "total"]);
    assert.deepEqual(doc.hosts[1], {
      name: "mx2",
      state: "unreachable",
      error: "UNAVAILABLE: connect ECONNREFUSED",
    });
    assert.deepEqual(doc.hosts[0], { name: "mx1", state: "ok", stats: stats(1200, 3 * 86_400 + 7200) });
    assert.equal(doc.total.messagesInQueue, 1230);
    // People read the JSON too: counters in one order everywhere, preprocessed beside its kin.
    const order = [
      "messagesInQueue",
      "notPreprocessed",
      "preprocessed",
      "withLocal",
      "withRemote",
      "bouncing",
      "beingWritten",
      "bytes",
      "oldestBirthUnix",
      "oldestAgeSeconds",
    ];
    assert.deepEqual(Object.keys(doc.hosts[0].stats), order);
    assert.deepEqual(Object.keys(doc.total), order);
  });

  it("writes one NDJSON line per host", () => {
    const line = statsNdjsonHost(FLEET.hosts[1] as FleetStats["hosts"][number]);
    assert.equal(line.split("\n").length, 2);
    assert.deepEqual(JSON.parse(line), {
      kind: "host",
      name: "mx2",
      state: "unreachable",
      error: "UNAVAILABLE: connect ECONNREFUSED",
    });
  });

  it("writes CSV with a header, quoting fields that need it", () => {
    const withComma: FleetStats = {
      ...FLEET,
      hosts: [{ ...(FLEET.hosts[1] as FleetStats["hosts"][number]), error: 'refused, "no route"' }],
    };
    const lines = statsCsv(withComma).split("\r\n");
    assert.equal(
      lines[0],
      "host,state,error,messagesInQueue,notPreprocessed,preprocessed,withLocal,withRemote,bouncing,beingWritten,bytes,oldestBirthUnix,oldestAgeSeconds",
    );
    assert.equal(lines[1], 'mx2,unreachable,"refused, ""no route""",,,,,,,,,,');
    assert.equal(lines[2], "TOTAL,0/1 ok,,1230,2,1229,4,1227,2,0,1230000,1699733600,266400");
  });
});
