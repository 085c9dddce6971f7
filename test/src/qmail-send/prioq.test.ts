import assert from "node:assert/strict";
import { test } from "node:test";
import { Prioq } from "./prioq.js";

test("gives elements back in time order whatever order they went in", () => {
  const q = new Prioq();
  const times = [50, 10, 40, 10, 90, 0, 70, 30, 30, 60, 20, 80];
  for (const [i, dt] of times.entries()) q.insert({ id: String(i), dt });
  assert.equal(q.length, times.length);
  const out: number[] = [];
  for (let e = q.min(); e; e = q.min()) {
    out.push(e.dt);
    q.delmin();
  }
  assert.deepEqual(
    out,
    [...times].sort((a, b) => a - b),
  );
  assert.equal(q.min(), undefined);
  q.delmin(); // on an empty queue: nothing happens, as in qmail
  assert.equal(q.length, 0);
});

test("setAll makes everything due at once and later inserts still sort", () => {
  const q = new Prioq();
  for (let i = 0; i < 100; i++) q.insert({ id: String(i), dt: 1000 + ((i * 37) % 100) });
  q.setAll(5);
  q.insert({ id: "late", dt: 9 });
  q.insert({ id: "early", dt: 1 });
  assert.equal(q.min()?.id, "early");
  q.delmin();
  for (let i = 0; i < 100; i++) {
    assert.equal(q.min()?.dt, 5);
    q.delmin();
  }
  assert.equal(q.min()?.id, "late");
  assert.deepEqual(
    [...q].map((e) => e.id),
    ["late"],
  );
});
