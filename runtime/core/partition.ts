// A partition: a set of components with one event queue. It advances only to a
// horizon given by the synchronisation (sync.ts); events for components of other
// partitions go to an outbox and are delivered before the next window.
import { EventQueue, SimEvent } from './events.ts';
import { TraceHash } from './trace.ts';

export interface Component {
  readonly id: number;
  readonly name: string;
  /** schedule counter: the seq of the next event this component schedules */
  seq: number;
  readonly trace: TraceHash;
  handle(event: SimEvent, partition: Partition): void;
}

export class Partition {
  readonly queue = new EventQueue();
  /** component id → its partition index, shared by all partitions of a run */
  readonly components = new Map<number, Component>();
  /** destination partition → events to deliver at the next exchange */
  readonly outbox = new Map<number, SimEvent[]>();
  now = 0;
  /** the current window's end: no event created now may reach another partition before it */
  horizon = 0;
  eventsHandled = 0;

  constructor(
    readonly index: number,
    private readonly partitionOf: Int32Array,
  ) {}

  add(component: Component): void {
    if (this.partitionOf[component.id] !== this.index) throw new Error(`component ${component.name} belongs to partition ${this.partitionOf[component.id]}, not ${this.index}`);
    this.components.set(component.id, component);
  }

  /** Schedules an event from `source` (the component handling the current event, or initialising). */
  schedule(source: Component, time: number, target: number, kind: number, arg: number, data: unknown): void {
    if (time < this.now) throw new Error(`${source.name} scheduled an event in the past (${time} < ${this.now})`);
    const event = new SimEvent(time, source.id, source.seq++, target, kind, arg, data);
    const destination = this.partitionOf[target]!;
    if (destination === this.index) {
      this.queue.push(event);
      return;
    }
    // conservative sync: a message to another partition must not land inside the current window
    if (time < this.horizon) throw new Error(`causality: ${source.name} sent to partition ${destination} at ${time}, inside the window ending ${this.horizon}`);
    let list = this.outbox.get(destination);
    if (list === undefined) this.outbox.set(destination, (list = []));
    list.push(event);
  }

  deliver(events: readonly SimEvent[]): void {
    for (const event of events) this.queue.push(event);
  }

  nextEventTime(): number {
    return this.queue.peek()?.time ?? Infinity;
  }

  /** Handles every event with time < horizon, in (time, source, seq) order. */
  advance(horizon: number): void {
    this.horizon = horizon;
    const queue = this.queue;
    for (;;) {
      const event = queue.peek();
      if (event === undefined || event.time >= horizon) break;
      queue.pop();
      this.now = event.time;
      const target = this.components.get(event.target);
      if (target === undefined) throw new Error(`event for component ${event.target}, which partition ${this.index} does not hold`);
      target.trace.fold(event.time, event.source, event.seq, event.kind);
      target.handle(event, this);
      this.eventsHandled++;
    }
  }

  takeOutbox(): Map<number, SimEvent[]> {
    const out = new Map(this.outbox);
    this.outbox.clear();
    return out;
  }
}
