// qmail's prioq (prioq.c): a binary min-heap of (time, message) with insert, min and delmin.
// qmail-send keeps its schedule in these; the stand-in does too, so that a pass over a
// 100,000-message queue costs what it costs qmail-send (n log n), not n squared.

export interface PqElt {
  id: string;
  /** When it is due, in ms since the epoch (qmail's dt). */
  dt: number;
}

export class Prioq {
  private readonly heap: PqElt[] = [];

  get length(): number {
    return this.heap.length;
  }

  /** Every element, in no particular order (pqrun and pqfinish go through them all). */
  [Symbol.iterator](): Iterator<PqElt> {
    return this.heap[Symbol.iterator]();
  }

  insert(e: PqElt): void {
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as PqElt).dt <= e.dt) break;
      h[i] = h[parent] as PqElt;
      i = parent;
    }
    h[i] = e;
  }

  min(): PqElt | undefined {
    return this.heap[0];
  }

  delmin(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= h.length) break;
      const right = child + 1;
      if (right < h.length && (h[right] as PqElt).dt < (h[child] as PqElt).dt) child = right;
      if ((h[child] as PqElt).dt >= last.dt) break;
      h[i] = h[child] as PqElt;
      i = child;
    }
    h[i] = last;
  }

  /**
   * Sets every element's time to `dt` (qmail's pqrun on ALRM: everything due now). All keys
   * equal keep the heap valid.
   */
  setAll(dt: number): void {
    for (const e of this.heap) e.dt = dt;
  }
}
