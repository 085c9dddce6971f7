import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  filterFromFlags,
  Channel as WireChannel,
  Filter as WireFilter,
  MessageState as WireState,
} from "@qmfleet/proto";
import { FilterError } from "./engine/filter.js";
import type { Filter } from "./engine/model.js";
import { filterFromWire, filterToWire } from "./filter-wire.js";

const EVERY_KIND: Filter = {
  criteria: [
    { kind: "all" },
    { kind: "ids", ids: ["1", "2"] },
    { kind: "senderExact", sender: "" },
    { kind: "senderRegex", pattern: { source: "@bad", caseInsensitive: true }, negate: true },
    { kind: "subjectContains", text: "迷惑メール" },
    { kind: "headerRegex", pattern: { source: "abcde", caseInsensitive: true } },
    { kind: "bodyRegex", pattern: { source: "WIN", caseInsensitive: false } },
    { kind: "toCcContains", text: "victim@abcde.net" },
    { kind: "toCcRegex", pattern: { source: "abcde", caseInsensitive: true } },
    { kind: "recipientRegex", pattern: { source: "^postmaster@", caseInsensitive: true } },
    { kind: "recipientDomain", domain: "abcde.net" },
    { kind: "ageSeconds", range: { min: 3600 } },
    { kind: "sizeBytes", range: { min: 0, max: 5000 } },
    { kind: "channel", channel: "local" },
    { kind: "state", state: "being-written", negate: true },
  ],
};

describe("filterFromWire / filterToWire", () => {
  it("round-trips every criterion kind through the encoded wire message", () => {
    const bytes = WireFilter.encode(filterToWire(EVERY_KIND)).finish();
    assert.deepEqual(filterFromWire(WireFilter.decode(bytes)), EVERY_KIND);
  });

  it("reads what qmHandle flags produce", () => {
    const wire = filterFromFlags([
      { flag: "subject", value: "failure notice" },
      { flag: "sender", value: "<>", negate: true },
      { flag: "channel", value: "remote" },
    ]);
    assert.deepEqual(filterFromWire(wire), {
      criteria: [
        { kind: "subjectContains", text: "failure notice" },
        { kind: "senderExact", sender: "", negate: true },
        { kind: "channel", channel: "remote" },
      ],
    });
  });

  it("refuses an empty criterion, two tests in one, and enums that name nothing", () => {
    const refuses = (criterion: WireFilter["criteria"][number], message: RegExp) =>
      assert.throws(
        () => filterFromWire({ criteria: [{ negate: false, all: true }, criterion] }),
        (err: unknown) => err instanceof FilterError && message.test(err.message),
      );
    refuses(
      { negate: true },
      /^invalid filter, criterion 2 is empty: it must set one of all, ids, sender_exact/,
    );
    refuses(
      { negate: false, subjectContains: "a", senderExact: "b" },
      /criterion 2 sets sender_exact and subject_contains/,
    );
    refuses(
      { negate: false, channel: WireChannel.CHANNEL_UNSPECIFIED },
      /criterion 2: channel must be CHANNEL_LOCAL or/,
    );
    refuses({ negate: false, state: WireState.UNRECOGNIZED }, /criterion 2: state must be a MESSAGE_STATE/);
    refuses({ negate: false, all: false }, /criterion 2: all is false/);
    // The passing twins.
    assert.equal(
      filterFromWire({ criteria: [{ negate: false, channel: WireChannel.CHANNEL_LOCAL }] }).criteria.length,
      1,
    );
    assert.equal(filterFromWire({ criteria: [{ negate: false, subjectContains: "a" }] }).criteria.length, 1);
  });

  it("gives an empty engine filter (selects nothing) for an empty wire filter", () => {
    assert.deepEqual(filterFromWire({ criteria: [] }), { criteria: [] });
  });
});
