import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Channel, Filter, MessageState } from "./gen/qmfleet/v1/queue.js";
import {
  describeFilter,
  FILTER_FLAGS,
  FilterFlagError,
  type FilterFlagUse,
  filterFromFlags,
  parseDuration,
  parseSize,
} from "./qmhandle-flags.js";

describe("filterFromFlags", () => {
  it("maps every qmHandle selection flag to its criterion", () => {
    const uses: FilterFlagUse[] = [
      { flag: "all", value: "" },
      { flag: "id", value: "1491085" },
      { flag: "sender", value: "<spam@bad.example>" },
      { flag: "senderRegex", value: "@bad\\." },
      { flag: "subject", value: "failure notice" },
      { flag: "header", value: "abcde\\.net" },
      { flag: "headerCase", value: "X-Spam" },
      { flag: "body", value: "viagra" },
      { flag: "bodyCase", value: "WIN" },
      { flag: "toCc", value: "victim@abcde.net" },
      { flag: "toCcRegex", value: "@abcde\\.net" },
    ];
    assert.deepEqual(filterFromFlags(uses).criteria, [
      { negate: false, all: true },
      { negate: false, ids: { ids: ["1491085"] } },
      { negate: false, senderExact: "spam@bad.example" },
      { negate: false, senderRegex: { source: "@bad\\.", caseInsensitive: true } },
      { negate: false, subjectContains: "failure notice" },
      { negate: false, headerRegex: { source: "abcde\\.net", caseInsensitive: true } },
      { negate: false, headerRegex: { source: "X-Spam", caseInsensitive: false } },
      { negate: false, bodyRegex: { source: "viagra", caseInsensitive: true } },
      { negate: false, bodyRegex: { source: "WIN", caseInsensitive: false } },
      { negate: false, toCcContains: "victim@abcde.net" },
      { negate: false, toCcRegex: { source: "@abcde\\.net", caseInsensitive: true } },
    ]);
  });

  it("maps our extras, with durations and sizes in units", () => {
    const uses: FilterFlagUse[] = [
      { flag: "recipient", value: "^postmaster@" },
      { flag: "domain", value: "@Abcde.net" },
      { flag: "olderThan", value: "7d" },
      { flag: "newerThan", value: "90s" },
      { flag: "minSize", value: "10k" },
      { flag: "maxSize", value: "5M" },
      { flag: "channel", value: "Remote" },
      { flag: "state", value: "being-written" },
    ];
    assert.deepEqual(filterFromFlags(uses).criteria, [
      { negate: false, recipientRegex: { source: "^postmaster@", caseInsensitive: true } },
      { negate: false, recipientDomain: "Abcde.net" },
      { negate: false, ageSeconds: { min: 604800 } },
      { negate: false, ageSeconds: { max: 90 } },
      { negate: false, sizeBytes: { min: 10240 } },
      { negate: false, sizeBytes: { max: 5242880 } },
      { negate: false, channel: Channel.CHANNEL_REMOTE },
      { negate: false, state: MessageState.MESSAGE_STATE_BEING_WRITTEN },
    ]);
  });

  it("ORs ids: repeated and comma-separated -d merge into one criterion, negated ones into another", () => {
    const filter = filterFromFlags([
      { flag: "id", value: "1,2" },
      { flag: "subject", value: "x" },
      { flag: "id", value: "3" },
      { flag: "id", value: "4", negate: true },
      { flag: "id", value: "5", negate: true },
    ]);
    assert.deepEqual(filter.criteria, [
      { negate: false, ids: { ids: ["1", "2", "3"] } },
      { negate: false, subjectContains: "x" },
      { negate: true, ids: { ids: ["4", "5"] } },
    ]);
  });

  it("negates with --not-*, and writes the null sender as <>", () => {
    assert.deepEqual(filterFromFlags([{ flag: "sender", value: "<>", negate: true }]).criteria, [
      { negate: true, senderExact: "" },
    ]);
  });

  it("gives an empty filter (selects nothing) for no flags", () => {
    assert.deepEqual(filterFromFlags([]), { criteria: [] });
  });

  it("survives the wire: encode and decode keep every criterion, the null sender included", () => {
    const filter = filterFromFlags([
      { flag: "sender", value: "<>" },
      { flag: "minSize", value: "0" },
      { flag: "channel", value: "local" },
      { flag: "subject", value: "迷惑メール", negate: true },
    ]);
    // The decoder spells absent oneof members out as undefined; JSON drops them.
    const decoded = JSON.parse(JSON.stringify(Filter.decode(Filter.encode(filter).finish())));
    assert.deepEqual(decoded, filter);
  });

  it("refuses values that would select everything or mean nothing, naming the flag as typed", () => {
    const refuses = (use: FilterFlagUse, message: RegExp) =>
      assert.throws(
        () => filterFromFlags([use]),
        (err: unknown) => err instanceof FilterFlagError && message.test(err.message),
      );
    refuses({ flag: "subject", value: "" }, /^-S needs a text: an empty one would match every message/);
    refuses({ flag: "header", value: "", negate: true }, /^--not-header needs a pattern/);
    refuses({ flag: "sender", value: " " }, /^-f needs an address \(the null sender is written '<>'\)/);
    refuses({ flag: "id", value: "12,x" }, /^-d "12,x": "x" is not a message id/);
    refuses({ flag: "olderThan", value: "3x" }, /^--older-than "3x": expected a duration like 90s/);
    refuses({ flag: "maxSize", value: "big" }, /^--max-size "big": expected a size/);
    refuses({ flag: "channel", value: "smtp" }, /^--channel "smtp": expected one of local, remote/);
    refuses(
      { flag: "state", value: "gone" },
      /^--state "gone": expected one of preprocessed, todo, bouncing, being-written/,
    );
    refuses({ flag: "all", value: "", negate: true }, /-D \(all\) cannot be negated/);
  });
});

describe("parseDuration and parseSize", () => {
  it("read the units operators type", () => {
    assert.deepEqual(
      ["45", "90s", "30m", "12H", "7d", "2w"].map(parseDuration),
      [45, 90, 1800, 43200, 604800, 1209600],
    );
    assert.deepEqual(
      ["2048", "10k", "10KB", "5M", "5MiB", "1g"].map(parseSize),
      [2048, 10240, 10240, 5242880, 5242880, 1073741824],
    );
  });

  it("refuse anything else", () => {
    for (const bad of ["", "-5", "1.5d", "d", "5 days"]) assert.equal(parseDuration(bad), undefined, bad);
    for (const bad of ["", "-1", "1.5M", "5T", "M"]) assert.equal(parseSize(bad), undefined, bad);
  });
});

describe("FILTER_FLAGS", () => {
  it("keeps qmHandle's letters and gives every flag a distinct long form", () => {
    const shorts = FILTER_FLAGS.flatMap((s) => (s.short ? [s.short] : []));
    assert.deepEqual(shorts, ["D", "d", "f", "F", "S", "h", "H", "b", "B", "x", "X"]);
    const longs = FILTER_FLAGS.map((s) => s.long);
    assert.equal(new Set(longs).size, longs.length);
  });
});

describe("describeFilter", () => {
  it("reads a filter back in one line", () => {
    const filter = filterFromFlags([
      { flag: "subject", value: "failure notice" },
      { flag: "sender", value: "<>", negate: true },
      { flag: "olderThan", value: "1h" },
      { flag: "header", value: "abcde\\.net" },
    ]);
    assert.equal(
      describeFilter(filter),
      'subject contains "failure notice" AND NOT sender <> AND age >= 3600s AND header ~ /abcde\\.net/i',
    );
    assert.equal(describeFilter({ criteria: [] }), "nothing (no criteria)");
  });
});
