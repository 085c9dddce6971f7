import { createRequire } from "node:module";

// package.json sits two levels up from both src/server and dist/server.
const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };

export const AGENT_VERSION: string = pkg.version;
