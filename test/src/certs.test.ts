import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type FleetCertificates, generateFleetCertificates } from "./certs.js";

const run = promisify(execFile);

/** openssl verify's verdict: true when the chain and the checks pass. */
async function verifies(caFile: string, certFile: string, extra: string[]): Promise<boolean> {
  try {
    await run("openssl", ["verify", "-CAfile", caFile, ...extra, certFile]);
    return true;
  } catch {
    return false;
  }
}

async function x509(file: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(file));
}

describe("generateFleetCertificates", () => {
  let dir: string;
  let certs: FleetCertificates;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-certs-"));
    certs = await generateFleetCertificates(join(dir, "pki"), { serverAltNames: ["DNS:mx1.example.jp"] });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("makes ECDSA P-256 keys", async () => {
    for (const pair of [certs.ca, certs.server, certs.operator, certs.reader, certs.otherClient]) {
      const cert = await x509(pair.cert);
      assert.equal(cert.publicKey.asymmetricKeyType, "ec", pair.cert);
      assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1", pair.cert);
    }
  });

  it("signs client certificates for client use with the fleet CA, carrying the role in OU", async () => {
    assert.equal(await verifies(certs.ca.cert, certs.operator.cert, ["-purpose", "sslclient"]), true);
    assert.equal(await verifies(certs.ca.cert, certs.reader.cert, ["-purpose", "sslclient"]), true);
    assert.match((await x509(certs.operator.cert)).subject, /^OU=admin$/m);
    assert.match((await x509(certs.reader.cert)).subject, /^OU=read$/m);
    // A client certificate cannot pose as an agent.
    assert.equal(await verifies(certs.ca.cert, certs.operator.cert, ["-purpose", "sslserver"]), false);
  });

  it("makes an agent certificate valid for localhost, 127.0.0.1, ::1 and the extra names only", async () => {
    const ok = (extra: string[]) =>
      verifies(certs.ca.cert, certs.server.cert, ["-purpose", "sslserver", ...extra]);
    assert.equal(await ok(["-verify_hostname", "localhost"]), true);
    assert.equal(await ok(["-verify_ip", "127.0.0.1"]), true);
    assert.equal(await ok(["-verify_ip", "::1"]), true);
    assert.equal(await ok(["-verify_hostname", "mx1.example.jp"]), true);
    assert.equal(await ok(["-verify_hostname", "mx2.example.jp"]), false);
    assert.equal(await ok(["-verify_ip", "10.0.0.1"]), false);
  });

  it("makes a second CA whose client certificate the fleet CA does not accept", async () => {
    assert.equal(await verifies(certs.otherCa.cert, certs.otherClient.cert, ["-purpose", "sslclient"]), true);
    assert.equal(await verifies(certs.ca.cert, certs.otherClient.cert, ["-purpose", "sslclient"]), false);
    // Same subject as the operator's: only the issuer tells them apart.
    assert.equal((await x509(certs.otherClient.cert)).subject, (await x509(certs.operator.cert)).subject);
  });

  it("gives every certificate its own serial", async () => {
    const serials = await Promise.all(
      [certs.server, certs.operator, certs.reader, certs.noRole].map(
        async (p) => (await x509(p.cert)).serialNumber,
      ),
    );
    assert.equal(new Set(serials).size, serials.length);
  });
});
