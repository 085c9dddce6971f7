// Test and demo certificates for mutual TLS, made with the machine's openssl (3.0): ECDSA P-256,
// one CA for the fleet, a server certificate valid for every loopback name a test dials, client
// certificates carrying the qmfleet role in their OU, and a second, unrelated CA with a client
// certificate of its own (it must be rejected by every agent of the fleet).
//
// The same steps, as plain openssl commands, are what an admin runs for a real fleet (see the
// README's "Certificates" section); this module only writes them down once for tests and the demo.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A certificate and its private key, as PEM file paths. */
export interface KeyPairFiles {
  cert: string;
  key: string;
}

export interface FleetCertificates {
  dir: string;
  /** The fleet CA: agents trust client certificates it signed, the controller trusts agents it signed. */
  ca: KeyPairFiles;
  /** Agent certificate: subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1 (plus any extra names). */
  server: KeyPairFiles;
  /** Client certificate with OU=admin (may run destructive calls). */
  operator: KeyPairFiles;
  /** Client certificate with OU=read (read-only calls). */
  reader: KeyPairFiles;
  /** Client certificate signed by the fleet CA with no qmfleet role in its OU. */
  noRole: KeyPairFiles;
  /** A second CA that no agent trusts... */
  otherCa: KeyPairFiles;
  /** ...and a client certificate it signed, with OU=admin: a valid-looking certificate from the wrong CA. */
  otherClient: KeyPairFiles;
}

export interface CertificateOptions {
  /** Extra subjectAltName entries for the server certificate, e.g. ["DNS:mx1.example.jp"]. */
  serverAltNames?: string[];
  /** Validity in days of the leaf certificates (default 825). */
  days?: number;
}

// Extension sections, kept in one config file so every certificate is made the same way. Leaf
// certificates get CA:FALSE and the EKU of their side: an agent certificate cannot act as a
// client and an operator certificate cannot serve.
function opensslConfig(serverAltNames: string[]): string {
  return [
    "[req]",
    "distinguished_name = dn",
    "prompt = no",
    "[dn]",
    "[ca_ext]",
    "basicConstraints = critical, CA:TRUE",
    "keyUsage = critical, keyCertSign, cRLSign",
    "subjectKeyIdentifier = hash",
    "[server_ext]",
    "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature",
    "extendedKeyUsage = serverAuth",
    `subjectAltName = ${["DNS:localhost", "IP:127.0.0.1", "IP:::1", ...serverAltNames].join(", ")}`,
    "[client_ext]",
    "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature",
    "extendedKeyUsage = clientAuth",
    "",
  ].join("\n");
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error("openssl is not installed (apt-get install openssl)");
    }
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function makeCa(dir: string, config: string, name: string, subject: string): Promise<KeyPairFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await openssl([
    "req",
    "-x509",
    "-new",
    "-config",
    config,
    "-extensions",
    "ca_ext",
    ...EC_KEY,
    "-keyout",
    files.key,
    "-out",
    files.cert,
    "-subj",
    subject,
    "-days",
    "3650",
  ]);
  return files;
}

async function makeLeaf(
  dir: string,
  config: string,
  ca: KeyPairFiles,
  name: string,
  subject: string,
  extensions: "server_ext" | "client_ext",
  days: number,
): Promise<KeyPairFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  await openssl([
    "req",
    "-new",
    "-config",
    config,
    ...EC_KEY,
    "-keyout",
    files.key,
    "-out",
    csr,
    "-subj",
    subject,
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    // A random serial: two certificates of one CA must never share one.
    "-set_serial",
    `0x${randomBytes(16).toString("hex")}`,
    "-days",
    String(days),
    "-extfile",
    config,
    "-extensions",
    extensions,
    "-out",
    files.cert,
  ]);
  return files;
}

/** Writes a complete set of fleet certificates into dir (created if missing). */
export async function generateFleetCertificates(
  dir: string,
  options: CertificateOptions = {},
): Promise<FleetCertificates> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, "openssl.cnf");
  await writeFile(config, opensslConfig(options.serverAltNames ?? []));
  const days = options.days ?? 825;

  const ca = await makeCa(dir, config, "ca", "/O=qmfleet/CN=qmfleet fleet CA");
  const otherCa = await makeCa(dir, config, "other-ca", "/O=elsewhere/CN=unrelated CA");
  const [server, operator, reader, noRole, otherClient] = await Promise.all([
    makeLeaf(dir, config, ca, "agent", "/O=qmfleet/OU=agent/CN=localhost", "server_ext", days),
    makeLeaf(dir, config, ca, "operator", "/O=qmfleet/OU=admin/CN=operator", "client_ext", days),
    makeLeaf(dir, config, ca, "reader", "/O=qmfleet/OU=read/CN=reader", "client_ext", days),
    makeLeaf(dir, config, ca, "no-role", "/O=qmfleet/OU=billing/CN=no-role", "client_ext", days),
    makeLeaf(dir, config, otherCa, "other-client", "/O=qmfleet/OU=admin/CN=operator", "client_ext", days),
  ]);
  return { dir, ca, server, operator, reader, noRole, otherCa, otherClient };
}
