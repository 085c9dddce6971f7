import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InventoryError, loadInventory, parseInventory, selectHosts } from "./inventory.js";

const VALID = `
tls:
  ca: pki/ca.crt
  cert: pki/operator.crt
  key: /etc/qmfleet/operator.key
hosts:
  - name: mx1
    address: localhost:7001
    tags: [tokyo, outbound]
  - name: mx2
    address: "[::1]:7002"
    tags: [osaka]
  - name: mx3
    address: mx3.example.jp:7001
`;

const FILE = "/srv/fleet/fleet.yaml";

function fails(text: string, message: RegExp): void {
  assert.throws(
    () => parseInventory(text, FILE),
    (error: unknown) => {
      assert.ok(error instanceof InventoryError, String(error));
      assert.match(error.message, message);
      return true;
    },
  );
}

describe("parseInventory", () => {
  it("reads hosts and resolves TLS paths relative to the inventory file", () => {
    const inv = parseInventory(VALID, FILE);
    assert.equal(inv.file, FILE);
    assert.deepEqual(inv.tls, {
      ca: "/srv/fleet/pki/ca.crt",
      cert: "/srv/fleet/pki/operator.crt",
      key: "/etc/qmfleet/operator.key",
    });
    assert.deepEqual(inv.hosts, [
      { name: "mx1", address: "localhost:7001", tags: ["tokyo", "outbound"] },
      { name: "mx2", address: "[::1]:7002", tags: ["osaka"] },
      { name: "mx3", address: "mx3.example.jp:7001", tags: [] },
    ]);
  });

  it("names the file and the field of each mistake", () => {
    fails("tls: [\n", /^inventory \/srv\/fleet\/fleet\.yaml: not valid YAML: .*line/);
    fails(VALID.replace("  ca: pki/ca.crt\n", ""), /fleet\.yaml: tls\.ca: expected a non-empty string/);
    fails(VALID.replace("tls:", "tlz:"), /: top level\.tlz: unknown field/);
    fails(
      VALID.replace("address: localhost:7001", "address: localhost"),
      /: hosts\[0\]\.address: "localhost" is not host:port/,
    );
    fails(VALID.replace("address: localhost:7001", "address: localhost:70000"), /hosts\[0\]\.address/);
    fails(VALID.replace("name: mx2", "name: mx1"), /: hosts\[1\]\.name: "mx1" is already used by hosts\[0\]/);
    fails(
      VALID.replace('"[::1]:7002"', "localhost:7001"),
      /: hosts\[1\]\.address: "localhost:7001" is already used/,
    );
    fails(VALID.replace("tags: [osaka]", "tags: osaka"), /: hosts\[1\]\.tags: expected a list/);
    fails(
      VALID.replace("tags: [osaka]", "tags: [osaka, 7]"),
      /: hosts\[1\]\.tags\[1\]: expected a non-empty string/,
    );
    fails(
      VALID.replace("name: mx3", "name: mx 3"),
      /: hosts\[2\]\.name: "mx 3" may not contain spaces or commas/,
    );
    fails(
      VALID.replace("    tags: [osaka]\n", "    tags: [osaka]\n    port: 7\n"),
      /: hosts\[1\]\.port: unknown field/,
    );
    fails("tls: { ca: a, cert: b, key: c }\nhosts: []\n", /: hosts: expected a non-empty list/);
  });
});

describe("loadInventory", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-inventory-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the file and resolves paths beside it", async () => {
    await writeFile(join(dir, "fleet.yaml"), VALID);
    const inv = await loadInventory(join(dir, "fleet.yaml"));
    assert.equal(inv.tls.ca, join(dir, "pki/ca.crt"));
    assert.equal(inv.hosts.length, 3);
  });

  it("says which file it cannot read", async () => {
    await assert.rejects(loadInventory(join(dir, "missing.yaml")), {
      name: "InventoryError",
      message: `cannot read inventory ${join(dir, "missing.yaml")}: ENOENT`,
    });
  });
});

describe("selectHosts", () => {
  const inv = parseInventory(VALID, FILE);
  const names = (selector: Parameters<typeof selectHosts>[1]) =>
    selectHosts(inv, selector).map((h) => h.name);

  it("targets every host by default, in inventory order", () => {
    assert.deepEqual(names({}), ["mx1", "mx2", "mx3"]);
  });

  it("targets by name, by any of the tags, and by both", () => {
    assert.deepEqual(names({ hosts: ["mx3", "mx1"] }), ["mx1", "mx3"]);
    assert.deepEqual(names({ tags: ["osaka", "outbound"] }), ["mx1", "mx2"]);
    assert.deepEqual(names({ hosts: ["mx1", "mx3"], tags: ["tokyo"] }), ["mx1"]);
  });

  it("rejects names and tags the inventory does not have, and empty selections", () => {
    assert.throws(() => names({ hosts: ["mx1", "mx9"] }), /has no host named mx9 \(hosts: mx1, mx2, mx3\)/);
    assert.throws(() => names({ tags: ["nagoya"] }), /no host has tag nagoya/);
    assert.throws(() => names({ hosts: ["mx3"], tags: ["tokyo"] }), /no host is named mx3 and tagged tokyo/);
  });
});
