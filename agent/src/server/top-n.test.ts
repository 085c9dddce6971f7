import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TopN } from "./top-n.js";

const byValue = (a: number, b: number) => a - b;

describe("TopN", () => {
  it("keeps the first N of the order, whatever order the items come in", () => {
    // A fixed permutation of 0..999 (multiplying by a number coprime to 1000).
    const items = Array.from({ length: 1000 }, (_, i) => (i * 617) % 1000);
    const top = new TopN(10, byValue);
    for (const item of items) top.offer(item);
    assert.deepEqual(top.drain(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("keeps everything, sorted, when fewer than N items come", () => {
    const top = new TopN(10, byValue);
    for (const item of [5, 3, 9]) top.offer(item);
    assert.deepEqual(top.drain(), [3, 5, 9]);
    assert.deepEqual(top.drain(), []);
  });

  it("follows the comparator given (a reversed one keeps the largest)", () => {
    const top = new TopN(3, (a: number, b: number) => b - a);
    for (const item of [4, 8, 1, 9, 7, 2]) top.offer(item);
    assert.deepEqual(top.drain(), [9, 8, 7]);
  });
});
