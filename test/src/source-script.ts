// A snippet of the workspace's TypeScript run in a node of its own, loading the sources as the
// tests' process does (tsx, the qmfleet-source condition): for what must happen in a separate
// process (the environment read when the addon loads, a builtin patched before load, a call
// that could hang).

import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface SourceScriptOptions {
  env?: NodeJS.ProcessEnv;
  /** node options before the script (--require a preload...). */
  nodeArgs?: string[];
  /** Killed (SIGKILL) past this. */
  timeoutMs?: number;
}

/** Runs `script` (an ES module) in a child node; its output as text. */
export function runSourceScript(script: string, opts: SourceScriptOptions = {}): SpawnSyncReturns<string> {
  return spawnSync(
    process.execPath,
    [
      "--conditions=qmfleet-source",
      "--import",
      "tsx",
      ...(opts.nodeArgs ?? []),
      "--input-type=module",
      "-e",
      script,
    ],
    {
      // The repository: tsx resolves from there whatever the caller's directory.
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      env: opts.env ?? process.env,
      encoding: "utf8",
      timeout: opts.timeoutMs,
      killSignal: "SIGKILL",
    },
  );
}
