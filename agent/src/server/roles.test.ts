import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerCertificate } from "node:tls";
import { describePeer, parseRoleMapping, roleAllows, roleOfCertificate } from "./roles.js";

function cert(subject: Record<string, string | string[]>): PeerCertificate {
  return { subject, serialNumber: "0A" } as unknown as PeerCertificate;
}

describe("roleOfCertificate", () => {
  const none = new Map();

  it("takes the role from the OU", () => {
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: "admin" }), none), "admin");
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: "read" }), none), "read");
  });

  it("grants nothing to a certificate whose OU names no role", () => {
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: "billing" }), none), undefined);
    assert.equal(roleOfCertificate(cert({ CN: "ops" }), none), undefined);
    // Roles are exact: no case folding, no substrings.
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: "Admin" }), none), undefined);
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: "administrators" }), none), undefined);
  });

  it("grants the highest of several OUs", () => {
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: ["read", "admin"] }), none), "admin");
    assert.equal(roleOfCertificate(cert({ CN: "ops", OU: ["billing", "read"] }), none), "read");
  });

  it("lets a CN mapping override the OU, both ways", () => {
    const map = new Map([
      ["monitor", "read" as const],
      ["lead", "admin" as const],
    ]);
    assert.equal(roleOfCertificate(cert({ CN: "monitor", OU: "admin" }), map), "read");
    assert.equal(roleOfCertificate(cert({ CN: "lead", OU: "staff" }), map), "admin");
    assert.equal(roleOfCertificate(cert({ CN: "other", OU: "staff" }), map), undefined);
  });
});

describe("roleAllows", () => {
  it("lets admin do what read may, not the reverse", () => {
    assert.equal(roleAllows("admin", "read"), true);
    assert.equal(roleAllows("admin", "admin"), true);
    assert.equal(roleAllows("read", "read"), true);
    assert.equal(roleAllows("read", "admin"), false);
  });
});

describe("parseRoleMapping", () => {
  it("splits CN=ROLE at the last =", () => {
    assert.deepEqual(parseRoleMapping("ops team=admin"), ["ops team", "admin"]);
    assert.deepEqual(parseRoleMapping("a=b=read"), ["a=b", "read"]);
  });

  it("rejects unknown roles and missing CNs", () => {
    assert.throws(
      () => parseRoleMapping("ops=root"),
      /invalid role mapping "ops=root": expected CN=read or CN=admin/,
    );
    assert.throws(() => parseRoleMapping("=read"), /invalid role mapping/);
    assert.throws(() => parseRoleMapping("ops"), /invalid role mapping/);
  });
});

describe("describePeer", () => {
  it("names the certificate by its subject, or its serial when it has none", () => {
    assert.equal(
      describePeer(cert({ CN: "ops", OU: ["read", "x"], O: "acme" })),
      "CN=ops,OU=read,OU=x,O=acme",
    );
    assert.equal(describePeer(cert({})), "serial 0A");
  });
});
