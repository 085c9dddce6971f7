import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { externalClientIp, isExternalAddress, receivedClientIp } from "./received.js";

describe("receivedClientIp", () => {
  it("reads qmail-smtpd's form, with and without HELO and ident, ignoring an address given as HELO", () => {
    assert.equal(
      receivedClientIp("from unknown (HELO foo) (203.0.113.5)\n  by mx1.example with SMTP; 28 Nov 2026"),
      "203.0.113.5",
    );
    assert.equal(receivedClientIp("from mail.example (198.51.100.7) by mx1 with SMTP; x"), "198.51.100.7");
    assert.equal(
      receivedClientIp("from unknown (HELO [192.0.2.9]) (alice@203.0.113.5) by mx1"),
      "203.0.113.5",
    );
    assert.equal(
      receivedClientIp("from unknown (HELO x) (::ffff:203.0.113.5) by mx1 with SMTP"),
      "203.0.113.5",
    );
    assert.equal(receivedClientIp("from unknown (HELO x) (2001:DB8::25) by mx1 with SMTP"), "2001:db8::25");
  });

  it("reads a folded, untrimmed value as its unfolded form: a fold's line break is a blank", () => {
    const folded: [string, string][] = [
      [" from unknown (HELO foo) (203.0.113.5)\n  by mx1.example with SMTP", "203.0.113.5"],
      [" from unknown (HELO\r\n\tfoo)\r\n (\n 203.0.113.5) by mx1", "203.0.113.5"],
      ["from host.example\n  ([192.0.2.1]\n  helo=198.51.100.1)\n\tby mx1", "192.0.2.1"],
      ["from [198.51.100.2]\n (helo=\n 192.0.2.7) by mx1", "198.51.100.2"],
      // Twins: nothing to find once unfolded either.
      ["\n (qmail 123 invoked from network);\n 28 Nov 2026", ""],
      ["from unknown (HELO\n 203.0.113.9)\n  by mx1", ""],
    ];
    for (const [value, ip] of folded) {
      assert.equal(receivedClientIp(value), ip, JSON.stringify(value));
      assert.equal(receivedClientIp(value.replace(/\r?\n/g, "").trim()), ip, JSON.stringify(value));
    }
  });

  it("finds no address in qmail-queue's own lines", () => {
    assert.equal(receivedClientIp("(qmail 16168 invoked by uid 0); 28 Nov 2026 04:11:12 -0000"), "");
    assert.equal(receivedClientIp("(qmail 123 invoked from network); 28 Nov 2026 04:11:12 -0000"), "");
  });

  it("reads Postfix and Sendmail forms, where the HELO name comes first and the address in brackets", () => {
    assert.equal(
      receivedClientIp(
        "from [192.0.2.1] (unknown [203.0.113.5])\n\tby mx.example.org (Postfix) with ESMTP id 1",
      ),
      "203.0.113.5",
    );
    assert.equal(
      receivedClientIp(
        "from helo.example (rdns.example [IPv6:2001:db8::1] (may be forged)) by mx (8.15.2/8.15.2)",
      ),
      "2001:db8::1",
    );
    assert.equal(
      receivedClientIp("from host.example (user@host.example [198.51.100.3]) by mx"),
      "198.51.100.3",
    );
  });

  it("reads Exim forms, where the address may stand before the comment", () => {
    assert.equal(
      receivedClientIp("from [203.0.113.5] (helo=[192.0.2.1]) by mx with esmtp (Exim 4.96)"),
      "203.0.113.5",
    );
    assert.equal(
      receivedClientIp("from host.example ([203.0.113.5]:52123 helo=[192.0.2.1]) by mx with esmtps"),
      "203.0.113.5",
    );
  });

  it("does not read an address out of the 'by' part", () => {
    assert.equal(receivedClientIp("from localhost by mx1 (203.0.113.5) with SMTP"), "");
  });
});

describe("isExternalAddress", () => {
  it("rejects loopback, private, link-local, CGNAT and unspecified addresses", () => {
    for (const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.0.1",
    ]) {
      assert.equal(isExternalAddress(ip), false, ip);
    }
    for (const ip of ["100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fd00::1", "not-an-ip"]) {
      assert.equal(isExternalAddress(ip), false, ip);
    }
  });

  it("accepts public and documentation addresses", () => {
    for (const ip of ["8.8.8.8", "203.0.113.5", "198.51.100.1", "192.0.2.1", "2001:db8::1"]) {
      assert.equal(isExternalAddress(ip), true, ip);
    }
  });

  it("draws the private ranges' edges exactly", () => {
    for (const ip of [
      "9.255.255.255",
      "11.0.0.0",
      "172.15.255.255",
      "172.32.0.0",
      "100.63.255.255",
      "100.128.0.0",
    ]) {
      assert.equal(isExternalAddress(ip), true, ip);
    }
    for (const ip of [
      "10.255.255.255",
      "172.31.255.255",
      "100.64.0.0",
      "100.127.255.255",
      "255.255.255.255",
    ]) {
      assert.equal(isExternalAddress(ip), false, ip);
    }
  });
});

describe("externalClientIp", () => {
  it("is the client address of a hop from the outside; twins: qmail's own lines and internal hops give none", () => {
    assert.equal(
      externalClientIp("from spam.example (spam.example [203.0.113.5]) by relay.internal (Postfix)"),
      "203.0.113.5",
    );
    assert.equal(externalClientIp("from unknown (HELO x) (198.51.100.7) by mx1 with SMTP"), "198.51.100.7");
    assert.equal(externalClientIp("(qmail 16168 invoked by uid 0); 28 Nov 2026 04:11:12 -0000"), "");
    assert.equal(externalClientIp("from unknown (HELO x) (192.168.0.2) by mx1 with SMTP"), "");
    assert.equal(externalClientIp("from unknown (HELO filter) (127.0.0.1) by mx1 with SMTP"), "");
  });
});
