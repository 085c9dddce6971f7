import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import {
  ancestorsOf,
  descendantsOf,
  isAlive,
  launchRecordOf,
  processInfo,
  systemdUnitIn,
} from "./processes.js";

describe("process table", () => {
  it("walks a real tree down (descendants) and up (ancestors), by pid and name", async () => {
    const sh = spawn("/bin/sh", ["-c", 'sleep 600 & echo "$!"; wait'], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    const [out] = await once(sh.stdout, "data");
    const sleeper = Number(String(out).trim());
    try {
      const below = descendantsOf(process.pid);
      assert.ok(below.some((p) => p.pid === sh.pid && p.comm === "sh"));
      assert.ok(below.some((p) => p.pid === sleeper && p.comm === "sleep" && p.ppid === sh.pid));
      assert.deepEqual(
        ancestorsOf(sleeper)
          .slice(0, 2)
          .map((p) => p.pid),
        [sh.pid, process.pid],
      );
      assert.deepEqual(launchRecordOf(sleeper).argv, ["sleep", "600"]);
      assert.equal(launchRecordOf(sleeper).cwd, process.cwd());
    } finally {
      process.kill(sleeper, "SIGKILL");
      await once(sh, "exit");
    }
    assert.equal(isAlive(sleeper), false);
    assert.equal(processInfo(sleeper), undefined);
  });

  it("reads the systemd service from a cgroup, v2 and v1, and none outside a service", () => {
    assert.equal(systemdUnitIn("0::/system.slice/qmail.service\n"), "qmail.service");
    assert.equal(
      systemdUnitIn("2:cpu:/\n1:name=systemd:/system.slice/qmail-send.service\n"),
      "qmail-send.service",
    );
    assert.equal(systemdUnitIn("0::/user.slice/user-0.slice/session-3.scope\n"), undefined);
    assert.equal(systemdUnitIn("0::/\n"), undefined);
  });
});
