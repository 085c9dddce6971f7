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

  it("refuses read flags that cannot go together, before asking any host (exit 1)", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["-Sfailure notice", "--yes"],
        /^qmfleet: --yes needs --reason TEXT: why, for every agent's audit log .* Nothing was changed\.\n$/,
      ],
      [["-D", "--yes", "--reason", " "], /--yes needs --reason TEXT/],
      [["-l", "--yes", "--reason", "r"], /--yes confirms a deletion: give selection flags alone/],
      [["-Sx", "--dry-run", "--yes", "--reason", "r"], /--dry-run only lists: it goes with neither --yes/],
      [
        ["-Sx", "--plan-file", "p.json", "--yes", "--reason", "r"],
        /--plan-file with --yes executes saved plans/,
      ],
      [["--plan-file", "p.json"], /--plan-file goes with a deletion's selection flags/],
      [["--plan-file", "p.json", "--yes", "--reason", "r", "--hosts", "mx1"], /leave out --hosts and --tags/],
      [["-l", "--stopped"], /--stopped shapes a deletion: give it with selection flags alone/],
      [["-Sx", "--canary", "1"], /--canary shapes a deletion's execution: give it with --yes/],
      [["-Sx", "--no-flush"], /--no-flush shapes a deletion's execution/],
      [["-s", "--reason", "r"], /--reason explains a change/],
      [["-Sx", "--format", "csv"], /--format csv is for listings and statistics/],
      [["-Sx", "-N"], /-N lists ids: with a deletion, give it with --dry-run/],
      [["-d", "mx1:5", "-d", "7"], /-d takes ids for every targeted host .* not both at once/],
      [["-l", "-d", "mx1:5"], /-d HOST:ID names a message to delete/],
      [["--restore", "mx1"], /--restore "mx1": expected HOST:ID/],
      [["--quarantine", "--all-recipients"], /--all-recipients goes with --restore/],
      [["-l", "--dry-run"], /--dry-run previews a deletion: give selection flags alone/],
      [
        ["-s", "-Sx"],
        /selection flags narrow -l, -L, -R, --summary and -t .*run -s, -m, --check, -a, --quarantine and --restore without them/,
      ],
      [["-s", "-N"], /-N lists ids: give it with -l, -L, -R or --dry-run/],
      [["-l", "-s", "--json"], /--json prints one document: give one action at a time/],
      [["-l", "--sort", "age"], /--sort age: sorting needs a limit from 1 to 10000 per host \(got 0\)/],
      [["-l", "--sort", "size", "--limit", "10001"], /--sort size: sorting needs a limit .*\(got 10001\)/],
      [["-l", "--desc"], /--desc orders a --sort/],
      [["-l", "--limit", "x"], /invalid --limit "x": expected a whole number/],
      [["--summary", "--top", "0"], /invalid --top "0"/],
      [["-m", "mx1:12ab"], /-m "mx1:12ab": expected HOST:ID/],
      [["-l", "--fingerprint", "1:ab"], /--fingerprint goes with -m HOST:ID/],
      [["-l", "--older-than", "soon"], /--older-than "soon": expected a duration like 90s/],
      [["-l", "-F"], /argument missing/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await run(["--inventory", inventory, ...args]);
      assert.equal(code, 1, args.join(" "));
      assert.match(stderr, message, args.join(" "));
      assert.equal(stdout, "", args.join(" "));
    }
  });

  it("gets past the flags to the inventory when they go together (the twins of the refusals)", async () => {
    for (const args of [
      ["-Sfailure notice", "--dry-run"],
      ["-Sfailure notice"],
      ["-D", "--yes", "--reason", "incident", "--canary", "1", "--no-flush", "--retire-timeout", "30"],
      ["-d", "mx1:5,mx1:6", "--stopped", "--no-quarantine", "--plan-file", "p.json"],
      ["--plan-file", "p.json", "--yes", "--reason", "later"],
      ["-t@slow\\.example$", "-Sx", "--reason", "r"],
      ["-a"],
      ["--quarantine", "--json"],
      ["--restore", "mx1:20260101T000000Z-5-0a0b0c0d", "--all-recipients"],
      ["-l", "-Sx", "--sort", "age", "--desc", "--limit", "5"],
      ["-L", "-N", "--not-sender", "<>"],
      ["--summary", "-habcde.net", "--top", "3"],
      ["-m", "mx1:12"],
      ["--check", "--format", "csv"],
    ]) {
      const { code, stderr } = await run(["--inventory", inventory, ...args]);
      assert.equal(code, 1, args.join(" "));
      // The next things read are the TLS files, which this inventory's directory does not have.
      assert.match(stderr, /tls\.(ca|cert|key): cannot read .*: ENOENT/, args.join(" "));
    }
  });

  it("names the TLS file it cannot read, before asking any host", async () => {
    const { code, stderr } = await run(["--inventory", inventory, "-s"]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`tls\\.ca: cannot read ${join(dir, "ca.crt")}: ENOENT`));
  });
});
