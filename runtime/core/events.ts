// Events and the pending-event queue, ordered by (time, source, seq): the
// source is the component that scheduled the event and seq counts that
// component's schedules, so the order never depends on partitioning or on
// the order in which messages crossed between partitions.
import { MAX_PENDING_EVENTS } from './limits.ts';

export class SimEvent {
  constructor(
    public time: number,
    /** id of the component that scheduled it */
    public source: number,
    /** the source's schedule counter */
    public seq: number,
    /** id of the component that handles it */
    public target: number,
    public kind: number,
    /** a small integer argument (a port, an app index, an action index) */
    public arg: number,
    /** a packet or other payload */
    public data: unknown,
  ) {}
}

export function eventBefore(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && (a.source < b.source || (a.source === b.source && a.seq < b.seq)));
}

/** A binary min-heap of events; push/pop O(log n), no allocation beyond the array. */
export class EventQueue {
  private heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  push(event: SimEvent): void {
    const heap = this.heap;
    if (heap.length >= MAX_PENDING_EVENTS) throw new Error(`more than ${MAX_PENDING_EVENTS} pending events: a model schedules without bound`);
    let i = heap.length;
    heap.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!eventBefore(event, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  pop(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        let child = left;
        if (right < n && eventBefore(heap[right]!, heap[left]!)) child = right;
        if (!eventBefore(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
