// The agent's TLS material: the fleet CA (client certificates must chain to it), and the agent's
// own certificate and key. Read once at start-up; a bad file stops the start with its name.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { ServerCredentials } from "@grpc/grpc-js";

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new Error(`cannot read ${flag} ${path}: ${code}`);
  }
}

function check(flag: string, path: string, parse: () => unknown, expected: string): void {
  try {
    parse();
  } catch (error) {
    throw new Error(`${flag} ${path} is not ${expected}: ${(error as Error).message}`);
  }
}

/** Mutual TLS: client certificates are required and verified against the CA. */
export async function loadServerCredentials(files: TlsFiles): Promise<ServerCredentials> {
  const [ca, cert, key] = await Promise.all([
    readPem("--tls-ca", files.ca),
    readPem("--tls-cert", files.cert),
    readPem("--tls-key", files.key),
  ]);
  check("--tls-ca", files.ca, () => new X509Certificate(ca), "a PEM certificate");
  check("--tls-cert", files.cert, () => new X509Certificate(cert), "a PEM certificate");
  check("--tls-key", files.key, () => createPrivateKey(key), "a PEM private key");
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`--tls-key ${files.key} is not the key of --tls-cert ${files.cert}`);
  }
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}
