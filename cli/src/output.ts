// Writing a stream of results to stdout at the pace the reader takes them: a fleet listing of a
// million messages piped into `less` must wait for it, not pile up in memory. Paired with the
// controller's flow control, a slow reader slows the agents' scans down to its own pace.

import type { ActionContext } from "./actions/action.js";

/** Writes `text`; when stdout says it is full, waits for it to drain (or for the run to be cancelled). */
export async function emit(ctx: ActionContext, text: string): Promise<void> {
  const out = ctx.stdout;
  // Once cancelled (Ctrl-C, or the reader gone) the rest is written without waiting: the hosts'
  // states still reach a terminal, and nothing waits for a pipe nobody reads.
  if (out.write(text) !== false || !out.once || ctx.signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.off?.("drain", done);
      ctx.signal.removeEventListener("abort", done);
      resolve();
    };
    out.once?.("drain", done);
    ctx.signal.addEventListener("abort", done, { once: true });
  });
}
