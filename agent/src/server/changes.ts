// Changes to the queue in progress (purge executions, restores, retries), so that stopping the
// agent waits for them: a stopped purge cut short would leave qmail-send down until the next
// start's recovery, and a live one would leave messages neutralized but unreported. Reads are
// not tracked; they are cancelled by the shutdown's grace period as before.

export class ChangesInFlight {
  private readonly running = new Set<Promise<unknown>>();

  /** Runs `change`, counted until it settles. */
  run<T>(change: () => Promise<T>): Promise<T> {
    const promise = change();
    this.running.add(promise);
    const forget = () => this.running.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  get count(): number {
    return this.running.size;
  }

  /** Resolves once every change started so far has settled (at once when none runs). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
