// What every action of `qmfleet-agent local` writes through, and how it fails.

import { once } from "node:events";

/** A command line that cannot run; printed as is, exit status 1. */
export class LocalUsageError extends Error {}

/** The reader went away (`local -l | head`): stop quietly, as Unix tools do. */
export class OutputClosed extends Error {}

/** stdout with back-pressure: a listing of a million messages must not pile up in memory. */
export class Output {
  private failure: NodeJS.ErrnoException | undefined;

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      this.failure = err;
    });
  }

  async write(text: string): Promise<void> {
    this.raise();
    if (!this.stream.write(text)) {
      // once() rejects on "error", which the listener above has recorded: raise() reports it.
      await Promise.race([once(this.stream, "drain"), once(this.stream, "close")]).catch(() => undefined);
    }
    this.raise();
  }

  private raise(): void {
    if (this.failure?.code === "EPIPE") throw new OutputClosed();
    if (this.failure) throw this.failure;
  }
}
