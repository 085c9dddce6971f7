// A server stream that finds nothing for a while (a filter that matches little in a big queue, a
// sorted listing scanning before its first message, a consistent queue being checked) must not
// look like a dead agent: the controller ends a host that stays silent for its --timeout. So while
// a handler works, an empty response goes out whenever nothing went out for KEEP_ALIVE_MS. The
// scan gives the event loop a turn every few milliseconds (scan.ts paced), which lets the timer run.
// Controllers skip empty responses.

export const KEEP_ALIVE_MS = 5000;

export interface KeepAlive {
  /** A real response went out. */
  sent(): void;
  /** No more keep-alives (before the handler returns: nothing may be written after the end). */
  stop(): void;
}

/** Starts sending `empty()` whenever nothing was sent for everyMs. */
export function startKeepAlive(empty: () => Promise<void>, everyMs = KEEP_ALIVE_MS): KeepAlive {
  let last = performance.now();
  let inFlight = false;
  const timer = setInterval(
    () => {
      if (inFlight || performance.now() - last < everyMs) return;
      inFlight = true;
      last = performance.now();
      // A failure here (the client went away) is the handler's to see on its next send.
      empty()
        .catch(() => undefined)
        .finally(() => {
          inFlight = false;
        });
    },
    Math.max(10, everyMs / 4),
  );
  return {
    sent() {
      last = performance.now();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
