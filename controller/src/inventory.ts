// The fleet inventory: which agents exist, where, with which tags, and the client certificate the
// controller presents to them. One YAML file:
//
//   tls:                       # paths relative to this file
//     ca: pki/ca.crt           # the CA the agents' certificates chain to
//     cert: pki/operator.crt   # this operator's client certificate (OU=read or OU=admin)
//     key: pki/operator.key
//   hosts:
//     - name: mx1              # unique; how the host is shown and selected
//       address: mx1.example.jp:7001
//       tags: [tokyo, outbound]
//
// Targeting: --hosts NAME,NAME picks hosts by name, --tags TAG,TAG picks hosts having any of the
// tags; given both, a host must satisfy both. Naming a host or tag that the inventory does not
// have is an error, never a silent empty selection.

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseDocument } from "yaml";

export interface TlsPaths {
  /** Absolute paths. */
  ca: string;
  cert: string;
  key: string;
}

export interface InventoryHost {
  name: string;
  /** host:port as dialled; the agent certificate's subjectAltName must cover the host part. */
  address: string;
  tags: string[];
}

export interface Inventory {
  /** Absolute path of the inventory file. */
  file: string;
  tls: TlsPaths;
  hosts: InventoryHost[];
}

/** An inventory that cannot be used, or a selection it cannot satisfy; the message names the file and field. */
export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InventoryError";
  }
}

type Fields = Record<string, unknown>;

function isFields(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

class Reader {
  constructor(readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new InventoryError(`inventory ${this.file}: ${field}: ${problem}`);
  }

  fields(value: unknown, field: string, allowed: readonly string[]): Fields {
    if (!isFields(value)) {
      this.fail(field, `expected a mapping with ${allowed.join(", ")}`);
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        this.fail(`${field}.${key}`, `unknown field (expected one of ${allowed.join(", ")})`);
      }
    }
    return value;
  }

  text(value: unknown, field: string, example: string): string {
    if (typeof value !== "string" || value.trim() === "") {
      this.fail(field, `expected a non-empty string, e.g. ${example}`);
    }
    return value;
  }
}

// A comma separates names and tags on the command line (--hosts a,b), so neither may hold one.
const NAME = /^[^\s,]+$/;

// host:port or [ipv6]:port, as grpc-js dials it.
const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/;

function readHost(reader: Reader, value: unknown, index: number): InventoryHost {
  const field = `hosts[${index}]`;
  const fields = reader.fields(value, field, ["name", "address", "tags"]);
  const name = reader.text(fields.name, `${field}.name`, "mx1");
  if (!NAME.test(name)) {
    reader.fail(`${field}.name`, `"${name}" may not contain spaces or commas`);
  }
  const address = reader.text(fields.address, `${field}.address`, "mx1.example.jp:7001");
  const port = Number(ADDRESS.exec(address)?.[1]);
  if (!(port >= 1 && port <= 65535)) {
    reader.fail(
      `${field}.address`,
      `"${address}" is not host:port (e.g. mx1.example.jp:7001 or [2001:db8::1]:7001)`,
    );
  }
  const tags = fields.tags ?? [];
  if (!Array.isArray(tags)) {
    reader.fail(`${field}.tags`, "expected a list, e.g. [tokyo, outbound]");
  }
  const tagList = tags.map((tag, t) => {
    const text = reader.text(tag, `${field}.tags[${t}]`, "tokyo");
    if (!NAME.test(text)) {
      reader.fail(`${field}.tags[${t}]`, `"${text}" may not contain spaces or commas`);
    }
    return text;
  });
  return { name, address, tags: tagList };
}

/** Parses inventory text; `file` is where it came from (TLS paths are relative to its directory). */
export function parseInventory(text: string, file: string): Inventory {
  const path = resolve(file);
  // Annotated so that reader.fail (never) narrows types below.
  const reader: Reader = new Reader(path);
  const doc = parseDocument(text);
  const [first] = doc.errors;
  if (first) {
    throw new InventoryError(`inventory ${path}: not valid YAML: ${first.message.split("\n")[0]}`);
  }
  const top = reader.fields(doc.toJS(), "top level", ["tls", "hosts"]);
  const tlsFields = reader.fields(top.tls, "tls", ["ca", "cert", "key"]);
  const base = dirname(path);
  const tls: TlsPaths = {
    ca: resolve(base, reader.text(tlsFields.ca, "tls.ca", "pki/ca.crt")),
    cert: resolve(base, reader.text(tlsFields.cert, "tls.cert", "pki/operator.crt")),
    key: resolve(base, reader.text(tlsFields.key, "tls.key", "pki/operator.key")),
  };
  if (!Array.isArray(top.hosts) || top.hosts.length === 0) {
    reader.fail("hosts", "expected a non-empty list of { name, address, tags }");
  }
  const hosts = top.hosts.map((h, i) => readHost(reader, h, i));
  // Two entries for one agent would be queried twice and counted twice in fleet totals.
  for (const key of ["name", "address"] as const) {
    const seen = new Map<string, number>();
    hosts.forEach((host, i) => {
      const earlier = seen.get(host[key]);
      if (earlier !== undefined) {
        reader.fail(`hosts[${i}].${key}`, `"${host[key]}" is already used by hosts[${earlier}]`);
      }
      seen.set(host[key], i);
    });
  }
  return { file: path, tls, hosts };
}

export async function loadInventory(file: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new InventoryError(`cannot read inventory ${resolve(file)}: ${code}`);
  }
  return parseInventory(text, file);
}

export interface HostSelector {
  /** Host names; empty or absent: no restriction by name. */
  hosts?: string[];
  /** Tags, any of which a host must have; empty or absent: no restriction by tag. */
  tags?: string[];
}

/** The targeted hosts, in inventory order. */
export function selectHosts(inventory: Inventory, selector: HostSelector = {}): InventoryHost[] {
  const names = selector.hosts ?? [];
  const tags = selector.tags ?? [];
  const known = new Set(inventory.hosts.map((h) => h.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new InventoryError(
      `inventory ${inventory.file} has no host named ${unknown.join(", ")} (hosts: ${[...known].join(", ")})`,
    );
  }
  const knownTags = new Set(inventory.hosts.flatMap((h) => h.tags));
  const unknownTags = tags.filter((t) => !knownTags.has(t));
  if (unknownTags.length > 0) {
    throw new InventoryError(`inventory ${inventory.file}: no host has tag ${unknownTags.join(", ")}`);
  }
  const selected = inventory.hosts.filter(
    (h) =>
      (names.length === 0 || names.includes(h.name)) &&
      (tags.length === 0 || h.tags.some((t) => tags.includes(t))),
  );
  if (selected.length === 0) {
    throw new InventoryError(
      `inventory ${inventory.file}: no host is named ${names.join(", ")} and tagged ${tags.join(" or ")}`,
    );
  }
  return selected;
}
