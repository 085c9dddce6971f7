import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Group, GroupBy, type SummarizeResponse } from "@qmfleet/proto";
import { hostTop, mergeSummaries } from "./summary.js";

const LABELS = ["5", "10", "1280+"];

function host(groups: [GroupBy, string, number][], shapeRows?: [string, number[]][]): SummarizeResponse {
  const list: Group[] = groups.map(([by, key, count]) => ({ by, key, count, bytes: count * 1000 }));
  const matched = groups
    .filter(([by]) => by === GroupBy.GROUP_BY_SENDER)
    .reduce((sum, [, , n]) => sum + n, 0);
  return {
    groups: list,
    matched,
    matchedBytes: matched * 1000,
    ...(shapeRows
      ? {
          shape: {
            bucketLabels: LABELS,
            rows: shapeRows.map(([domain, counts]) => ({
              domain,
              total: counts.reduce((a, b) => a + b, 0),
              counts,
            })),
          },
        }
      : {}),
  };
}

const { GROUP_BY_SENDER: SENDER, GROUP_BY_SUBJECT: SUBJECT } = GroupBy;

describe("mergeSummaries", () => {
  it("adds the counts and bytes of the same key across hosts, then keeps the top N per dimension", () => {
    const merged = mergeSummaries(
      [
        host([
          [SENDER, "", 50],
          [SENDER, "a@x", 30],
          [SUBJECT, "配信失敗のお知らせ", 40],
        ]),
        host([
          [SENDER, "b@y", 45],
          [SENDER, "", 20],
          [SUBJECT, "配信失敗のお知らせ", 15],
        ]),
        host([[SENDER, "a@x", 25]]),
      ],
      2,
      100,
    );
    assert.equal(merged.matched, 50 + 30 + 45 + 20 + 25);
    assert.equal(merged.matchedBytes, merged.matched * 1000);
    assert.deepEqual(
      merged.groups.map((g) => [g.by, g.key, g.count, g.bytes, g.hosts]),
      [
        [SENDER, "", 70, 70_000, 2],
        [SENDER, "a@x", 55, 55_000, 2],
        [SUBJECT, "配信失敗のお知らせ", 55, 55_000, 2],
      ],
    );
    assert.deepEqual(merged.approximate, []);
    assert.equal(merged.shape, undefined);
  });

  it("marks a dimension approximate when some host's list was full", () => {
    const full = host([
      [SENDER, "a", 3],
      [SENDER, "b", 2],
      [SUBJECT, "s", 1],
    ]);
    const merged = mergeSummaries([full, host([[SENDER, "c", 9]])], 1, 2);
    assert.deepEqual(merged.approximate, [SENDER]);
    assert.deepEqual(
      merged.groups.map((g) => [g.key, g.count]),
      [
        ["c", 9],
        ["s", 1],
      ],
    );
  });

  it("knows a merged top is exact when every full list reported its keys, and not when a left-out key could pass", () => {
    // Both lists are full (asked 2): each host may have left out keys counting up to its last entry.
    const answers = [
      host([
        [SENDER, "a", 10],
        [SENDER, "b", 2],
      ]),
      host([
        [SENDER, "a", 8],
        [SENDER, "c", 3],
      ]),
    ];
    const one = mergeSummaries(answers, 1, 2);
    assert.deepEqual(
      one.groups.map((g) => [g.key, g.count]),
      [["a", 18]],
    );
    assert.deepEqual(one.approximate, []);
    // The second place: c counts 3 or more (the first host may have left it out), and b (2, plus
    // up to 3 left out by the second host) might pass it.
    const two = mergeSummaries(answers, 2, 2);
    assert.deepEqual(
      two.groups.map((g) => [g.key, g.count]),
      [
        ["a", 18],
        ["c", 3],
      ],
    );
    assert.deepEqual(two.approximate, [SENDER]);
  });

  it("adds qshape tables: TOTAL row exactly, domain rows by name, top domains kept", () => {
    const merged = mergeSummaries(
      [
        host(
          [],
          [
            ["TOTAL", [5, 1, 4]],
            ["abcde.net", [4, 0, 3]],
            ["example.co.jp", [1, 1, 1]],
          ],
        ),
        host(
          [],
          [
            ["TOTAL", [2, 2, 2]],
            ["abcde.net", [2, 0, 0]],
            ["good.example", [0, 2, 2]],
          ],
        ),
      ],
      2,
      100,
    );
    assert.deepEqual(merged.shape, {
      bucketLabels: LABELS,
      rows: [
        { domain: "TOTAL", total: 16, counts: [7, 3, 6] },
        { domain: "abcde.net", total: 9, counts: [6, 0, 3] },
        { domain: "good.example", total: 4, counts: [0, 2, 2] },
      ],
      approximate: false,
    });
  });
});

describe("hostTop", () => {
  it("asks each host for more groups than shown, within the agent's cap", () => {
    assert.equal(hostTop(20), 100);
    assert.equal(hostTop(1), 5);
    assert.equal(hostTop(500), 1000);
  });
});
