#!/usr/bin/env node
// qmfleet-agent: runs on each qmail server. `serve` answers qmfleet controllers over gRPC with
// mutual TLS.

import { Command } from "commander";
import { registerServeCommand } from "../cli/serve-command.js";
import { AGENT_VERSION } from "../server/version.js";

const program = new Command("qmfleet-agent")
  .description("reads, summarises and safely purges this host's qmail queue")
  .version(AGENT_VERSION);
registerServeCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`qmfleet-agent: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
