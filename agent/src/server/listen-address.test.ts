import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatListenAddress, isLoopbackHost, parseListenAddress } from "./listen-address.js";

describe("parseListenAddress", () => {
  it("reads host:port and [ipv6]:port", () => {
    assert.deepEqual(parseListenAddress("0.0.0.0:7001"), { host: "0.0.0.0", port: 7001 });
    assert.deepEqual(parseListenAddress("localhost:0"), { host: "localhost", port: 0 });
    assert.deepEqual(parseListenAddress("[::1]:7001"), { host: "::1", port: 7001 });
    assert.deepEqual(parseListenAddress("[::]:7001"), { host: "::", port: 7001 });
  });

  it("rejects what is not HOST:PORT, saying what is expected", () => {
    for (const bad of [
      "7001",
      "localhost",
      "localhost:",
      "localhost:99999",
      "::1:7001",
      "[localhost]:1",
      ":7001",
    ]) {
      assert.throws(() => parseListenAddress(bad), /invalid listen address .*HOST:PORT|only an IPv6/, bad);
    }
  });

  it("formats IPv6 in brackets for grpc-js", () => {
    assert.equal(formatListenAddress({ host: "::1", port: 5 }), "[::1]:5");
    assert.equal(formatListenAddress({ host: "localhost", port: 5 }), "localhost:5");
  });
});

describe("isLoopbackHost", () => {
  it("accepts localhost, 127.0.0.0/8 and ::1 only", () => {
    for (const host of ["localhost", "127.0.0.1", "127.1.2.3", "::1"]) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of [
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "128.0.0.1",
      "localhost.example.com",
      "127.example.com",
    ]) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});
