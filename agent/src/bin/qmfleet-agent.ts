#!/usr/bin/env node
// qmfleet-agent: runs on each qmail server. `serve` answers qmfleet controllers over gRPC with
// mutual TLS; `local` is qmHandle on this host, straight on the queue directory.

import { Command } from "commander";
import { registerLocalCommand } from "../cli/local-command.js";
import { registerServeCommand } from "../cli/serve-command.js";
import { AGENT_VERSION } from "../server/version.js";

// -V and -h are qmHandle flags (version, header filter): commander's own are long-only.
const program = new Command("qmfleet-agent")
  .description("reads, summarises and safely purges this host's qmail queue")
  .helpOption("--help", "show this help")
  .version(AGENT_VERSION, "--version", "show qmfleet-agent's version");
registerServeCommand(program);
registerLocalCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`qmfleet-agent: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
