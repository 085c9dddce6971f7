// Argument handling and exit statuses. Runs against real agents are in test/src/e2e.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runQmfleet } from "./program.js";

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runQmfleet(
    args,
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
    new AbortController().signal,
  );
  return { code, stdout, stderr };
}

describe("qmfleet arguments", () => {
  let dir: string;
  let inventory: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qmfleet-cli-"));
    inventory = join(dir, "fleet.yaml");
    await writeFile(
      inventory,
      "tls: { ca: ca.crt, cert: op.crt, key: op.key }\nhosts:\n  - { name: mx1, address: localhost:7001 }\n",
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("shows help on stdout with the exit statuses, and exits 0", async () => {
    const { code, stdout } = await run(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /Usage: qmfleet/);
    assert.match(stdout, /2 {2}at least one host failed/);
    assert.match(stdout, /--inventory <file>/);
  });

  it("leaves -h and -V to qmHandle's meanings", async () => {
    const help = await run(["-h"]);
    assert.doesNotMatch(help.stdout, /Usage:/);
    const version = await run(["-V"]);
    assert.doesNotMatch(version.stdout, /^\d+\.\d+\.\d+/);
    assert.match((await run(["--version"])).stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it("exits 1 with a message naming the problem for each usage error", async () => {
    const cases: [string[], RegExp][] = [
      [["--inventory", inventory], /no action given: -s shows statistics/],
      [["-s"], /no inventory: give --inventory FILE or set QMFLEET_INVENTORY/],
      [["--inventory", inventory, "-s", "--json", "--format", "csv"], /--json and --format csv contradict/],
      [["--inventory", inventory, "-s", "--format", "xml"], /argument 'xml' is invalid/],
      [
        ["--inventory", inventory, "-s", "--timeout", "0"],
        /invalid --timeout "0": expected a positive number/,
      ],
      [["--inventory", inventory, "-s", "--hosts", "mx9"], /has no host named mx9/],
      [["--inventory", join(dir, "nope.yaml"), "-s"], /cannot read inventory .*nope\.yaml: ENOENT/],
      [["--inventory", inventory, "-s", "--nonsense"], /unknown option '--nonsense'/],
      [["--inventory", inventory, "-s", "extra"], /too many arguments/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await run(args);
      assert.equal(code, 1, args.join(" "));
      assert.match(stderr, message, args.join(" "));
      assert.equal(stdout, "", args.join(" "));
    }
  });

  it("names the TLS file it cannot read, before asking any host", async () => {
    const { code, stderr } = await run(["--inventory", inventory, "-s"]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`tls\\.ca: cannot read ${join(dir, "ca.crt")}: ENOENT`));
  });
});
