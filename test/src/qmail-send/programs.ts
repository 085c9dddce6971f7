// How to run one of this directory's programs (stand-in.ts, qmail-queue.ts) as a real process:
// from the TypeScript sources in tests (through tsx's loader), from test/dist once built.

import { fileURLToPath } from "node:url";

/** Node arguments that run `name` ("stand-in", "qmail-queue"), before the program's own. */
export function programArgs(name: string): string[] {
  const url = new URL(import.meta.url);
  const fromSource = url.pathname.endsWith(".ts");
  const file = fileURLToPath(new URL(`./${name}.${fromSource ? "ts" : "js"}`, url));
  return fromSource ? ["--import", import.meta.resolve("tsx"), file] : [file];
}
