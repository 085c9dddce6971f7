/** A command line that cannot run: printed as "qmfleet: <message>", exit status 1, nothing asked of any host. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
