import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessageTarget } from "./show-action.js";

describe("parseMessageTarget", () => {
  it("takes HOST:ID, ID, and either with the fingerprint a listing gives", () => {
    assert.deepEqual(parseMessageTarget("mx1:1491085"), { host: "mx1", id: "1491085" });
    assert.deepEqual(parseMessageTarget("1491085"), { id: "1491085" });
    assert.deepEqual(parseMessageTarget("mx1.tokyo:1491085:245:0123abcd"), {
      host: "mx1.tokyo",
      id: "1491085",
      fingerprint: "245:0123abcd",
    });
    assert.deepEqual(parseMessageTarget("1491085:245:0123abcd"), {
      id: "1491085",
      fingerprint: "245:0123abcd",
    });
  });

  it("refuses what is no message reference", () => {
    for (const bad of ["", "mx1:", "mx1:12ab", "mx1:12:zz", "a b:12"]) {
      assert.equal(parseMessageTarget(bad), undefined, JSON.stringify(bad));
    }
  });
});
