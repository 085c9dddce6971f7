import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startKeepAlive } from "./keep-alive.js";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("startKeepAlive", () => {
  it("sends an empty response while nothing else goes out, and nothing once stopped", async () => {
    let count = 0;
    let first!: () => void;
    const sentOne = new Promise<void>((resolve) => {
      first = resolve;
    });
    const keepAlive = startKeepAlive(async () => {
      count++;
      first();
    }, 20);
    await sentOne;
    keepAlive.stop();
    const atStop = count;
    await pause(100);
    assert.equal(count, atStop);
  });

  it("sends none while real responses keep going out (the twin)", async () => {
    let count = 0;
    const keepAlive = startKeepAlive(async () => {
      count++;
    }, 1000);
    for (let i = 0; i < 30; i++) {
      keepAlive.sent();
      await pause(10);
    }
    keepAlive.stop();
    assert.equal(count, 0);
  });

  it("survives a send that fails (the client went away)", async () => {
    let calls = 0;
    let second!: () => void;
    const again = new Promise<void>((resolve) => {
      second = resolve;
    });
    const keepAlive = startKeepAlive(async () => {
      calls++;
      if (calls === 2) second();
      throw new Error("CANCELLED");
    }, 20);
    await again;
    keepAlive.stop();
    assert.equal(calls, 2);
  });
});
