// A live (process) host as a node of the simulated network: frames its cell
// sends enter the network at the virtual time they were read from the tap;
// frames for it are collected in `inbox` when their transmission starts, so
// the live scheduler can write each into the tap at its arrival time.
//
// The host's own side of its links (its frames' queueing and serialisation,
// and the timeline actions on its ports) runs on a clock of its own, `egress`:
// a cell's frames are known only after its window ran, and by then the rest of
// the model may be ahead of them (runtime/simulation.ts runs it ahead by the
// smallest latency out of a live host). Nothing but the cell feeds this side,
// so handling it in its own order, at its own times, is exact; what leaves it
// reaches the far end at least one link latency later, never in the model's
// past.
import { SimEvent } from '../core/events.ts';
import { Partition, type Component } from '../core/partition.ts';
import { EventKind, HostNode, type LiveInbox, type NetworkNode } from '../model/nodes.ts';
import { destinationIndex, type Packet } from '../model/packet.ts';

/** The clock and queue of a live host's egress: its own events go here, everything else to the partition. */
class Egress extends Partition {
  /** the partition the host belongs to, while the egress runs */
  outer: Partition | null = null;

  constructor(private readonly node: LiveHostNode) {
    super(-1, new Int32Array(0));
  }

  override schedule(source: Component, time: number, target: number, kind: number, arg: number, data: unknown): void {
    if (target !== this.node.id) {
      if (this.outer === null) throw new Error(`${this.node.name}: an egress event for component ${target} outside a run`);
      this.outer.schedule(source, time, target, kind, arg, data);
      return;
    }
    if (time < this.now) throw new Error(`${source.name} scheduled an event in the past (${time} < ${this.now})`);
    this.queue.push(new SimEvent(time, source.id, source.seq++, target, kind, arg, data));
  }
}

export class LiveHostNode extends HostNode {
  readonly inbox: LiveInbox = [];
  /** frames sent by the cell that had no route (broadcast, multicast, IPv6) */
  dropsUnsupported = 0;
  private readonly egress = new Egress(this);

  /** Schedules one of this host's timeline actions (its ports' link-down/up/set, a log line) on its egress clock. */
  scheduleAction(atNs: number, action: number): void {
    this.egress.schedule(this, atNs, this.id, EventKind.Action, action, null);
  }

  /** The time of the egress's next event (a transmission ending, an action); Infinity if none. */
  egressNext(): number {
    return this.egress.nextEventTime();
  }

  /** Handles the egress's events before `beforeNs`, in order; what they send to others goes to `partition`. */
  runEgress(beforeNs: number, partition: Partition): void {
    this.egress.outer = partition;
    try {
      this.drainEgress(beforeNs, false);
    } finally {
      this.egress.outer = null;
    }
  }

  /** The egress's events before `beforeNs` (through it with `inclusive`), its outer partition set. */
  private drainEgress(beforeNs: number, inclusive: boolean): void {
    const egress = this.egress;
    for (;;) {
      const event = egress.queue.peek();
      if (event === undefined || event.time > beforeNs || (!inclusive && event.time === beforeNs)) break;
      egress.queue.pop();
      egress.now = event.time;
      this.trace.fold(event.time, event.source, event.seq, event.kind);
      this.handle(event, egress);
      egress.outer!.eventsHandled++;
    }
  }

  /**
   * A frame the cell sent at `timeNs` (its stamp; a cell's frames come in time order): the egress
   * catches up to it, then puts it on its port. Its arrival at the far end goes to `partition`.
   */
  liveSend(timeNs: number, packet: Packet, partition: Partition): void {
    const egress = this.egress;
    const at = Math.max(timeNs, egress.now);
    egress.outer = partition;
    try {
      this.drainEgress(at, true);
      egress.now = at;
      this.trace.fold(at, this.id, this.seq++, EventKind.LiveSend);
      partition.eventsHandled++;
      const port = this.egressPort(destinationIndex(packet));
      if (port < 0) {
        this.dropsUnsupported++;
        return;
      }
      this.stats.txPackets++;
      this.stats.txBytes += packet.wireBytes;
      this.transmit(port, packet, egress);
    } finally {
      egress.outer = null;
    }
  }

  protected override handleOther(event: SimEvent): void {
    if (event.kind === EventKind.Arrive) {
      // already queued in `inbox` when its transmission started; count it here, at its arrival
      const packet = event.data as Packet;
      this.stats.rxPackets++;
      this.stats.rxBytes += packet.wireBytes;
    }
  }
}

/** Schedules a timeline action of `node` (network.startActions): a live host's on its own egress
 *  clock (its ports' actions must come in order with its frames), any other node's in `partition`. */
export function scheduleNodeAction(partition: Partition, node: NetworkNode, atNs: number, action: number): void {
  if (node instanceof LiveHostNode) node.scheduleAction(atNs, action);
  else partition.schedule(node, atNs, node.id, EventKind.Action, action, null);
}

/** Model frames carry only headers; a cell's tap or a guest needs the whole frame (zero payload). */
export function frameBytes(bytes: Uint8Array, wireBytes: number): Uint8Array {
  if (bytes.length >= wireBytes) return bytes;
  const out = new Uint8Array(wireBytes);
  out.set(bytes);
  return out;
}
