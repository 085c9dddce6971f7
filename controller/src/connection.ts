// One grpc-js client per agent, all sharing the operator's client certificate from the
// inventory. Clients connect lazily on their first call and are closed together.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type ChannelCredentials, credentials } from "@grpc/grpc-js";
import { AgentServiceClient } from "@qmfleet/proto";
import { type Inventory, InventoryError, type InventoryHost, type TlsPaths } from "./inventory.js";

async function readPem(inventory: string, field: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new InventoryError(`inventory ${inventory}: ${field}: cannot read ${path}: ${code}`);
  }
}

function parsePem<T>(inventory: string, field: string, path: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new InventoryError(
      `inventory ${inventory}: ${field}: ${path} is not usable PEM: ${(error as Error).message}`,
    );
  }
}

/** The controller's side of mutual TLS: the fleet CA, and the operator's certificate and key. */
export async function loadClientCredentials(
  tls: TlsPaths,
  inventoryFile: string,
): Promise<ChannelCredentials> {
  // One after the other: with several unreadable, the error names the first in this order,
  // every time (read at once, whichever failed first won).
  const ca = await readPem(inventoryFile, "tls.ca", tls.ca);
  const cert = await readPem(inventoryFile, "tls.cert", tls.cert);
  const key = await readPem(inventoryFile, "tls.key", tls.key);
  // Checked here so a wrong file is named now, not reported later as every host "unreachable".
  parsePem(inventoryFile, "tls.ca", tls.ca, () => new X509Certificate(ca));
  const certificate = parsePem(inventoryFile, "tls.cert", tls.cert, () => new X509Certificate(cert));
  const privateKey = parsePem(inventoryFile, "tls.key", tls.key, () => createPrivateKey(key));
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new InventoryError(
      `inventory ${inventoryFile}: tls.key ${tls.key} is not the key of tls.cert ${tls.cert}`,
    );
  }
  return credentials.createSsl(ca, key, cert);
}

/** Hands out one client per host; `close` ends every connection. */
export interface AgentClients {
  client(host: InventoryHost): AgentServiceClient;
  close(): void;
}

export function agentClients(channelCredentials: ChannelCredentials): AgentClients {
  const clients = new Map<string, AgentServiceClient>();
  return {
    client(host) {
      let client = clients.get(host.address);
      if (!client) {
        client = new AgentServiceClient(host.address, channelCredentials);
        clients.set(host.address, client);
      }
      return client;
    },
    close() {
      for (const client of clients.values()) {
        client.close();
      }
      clients.clear();
    },
  };
}

/** Clients for every host of an inventory, with its TLS material. */
export async function connectFleet(inventory: Inventory): Promise<AgentClients> {
  return agentClients(await loadClientCredentials(inventory.tls, inventory.file));
}
