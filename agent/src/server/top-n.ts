// The first N items of an order, kept while a scan goes by: a bounded max-heap whose root is the
// worst item kept, so memory is N items whatever the queue holds, and each offer costs O(log N).
// This is what lets ListMessages sort a queue of a million messages without holding it.

export class TopN<T> {
  private readonly heap: T[] = [];

  constructor(
    private readonly limit: number,
    private readonly compare: (a: T, b: T) => number,
  ) {}

  offer(item: T): void {
    if (this.heap.length < this.limit) {
      this.heap.push(item);
      this.up(this.heap.length - 1);
    } else if (this.limit > 0 && this.compare(item, this.heap[0] as T) < 0) {
      this.heap[0] = item;
      this.down(0);
    }
  }

  /** The items kept, in order; the heap is left empty. */
  drain(): T[] {
    return this.heap.splice(0).sort(this.compare);
  }

  // A max-heap: a parent is never better (smaller) than its children.
  private worse(i: number, j: number): boolean {
    return this.compare(this.heap[i] as T, this.heap[j] as T) > 0;
  }

  private swap(i: number, j: number): void {
    const t = this.heap[i] as T;
    this.heap[i] = this.heap[j] as T;
    this.heap[j] = t;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let worst = i;
      if (left < this.heap.length && this.worse(left, worst)) worst = left;
      if (right < this.heap.length && this.worse(right, worst)) worst = right;
      if (worst === i) return;
      this.swap(i, worst);
      i = worst;
    }
  }
}
