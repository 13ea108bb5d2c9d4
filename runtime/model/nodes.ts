// Nodes of the modeled network: hosts (with model apps) and store-and-forward
// switches. Each is a simulation component; it owns the transmit side of its
// ports, so a packet's queueing and serialisation happen where it is sent and
// only its arrival crosses to the far end (possibly another partition).
import type { PlanLinkSettings } from '../../dsl/plan.ts';
import type { SimEvent } from '../core/events.ts';
import type { Component, Partition } from '../core/partition.ts';
import { TraceHash } from '../core/trace.ts';
import type { ModelApp } from './apps.ts';
import type { LinkDirection } from './link.ts';
import { arpReply, destinationIndex, ETHERTYPE_ARP, etherType, parseFrame, type Packet } from './packet.ts';

export const enum EventKind {
  Arrive = 1,
  TxDone = 2,
  App = 3,
  Action = 4,
  Forward = 5,
  /** a frame a live cell sent, entering the network at the time it was read from the tap (a trace
   *  entry only: the live host's egress handles it, runtime/live/host.ts) */
  LiveSend = 6,
}

/** Frames due at a live host, filled when their transmission starts (arrival time known then). */
export type LiveInbox = Array<{ timeNs: number; packet: Packet }>;

export interface Port {
  index: number;
  /** component id of the node at the far end */
  peer: number;
  /** the far end's port index */
  peerPort: number;
  tx: LinkDirection;
  /** set when the far end is a live host: its deliveries must be known before its window runs */
  liveInbox?: LiveInbox;
}

export interface NodeAction {
  type: 'link-down' | 'link-up' | 'link-set' | 'log';
  port: number;
  changes?: Partial<PlanLinkSettings>;
  text?: string;
}

export interface LogLine {
  timeNs: number;
  line: string;
}

export abstract class NetworkNode implements Component {
  seq = 0;
  readonly trace = new TraceHash();
  readonly ports: Port[] = [];
  /** destination host index → egress port; filled for nodes with more than one port */
  route: Int32Array | null = null;
  readonly actions: NodeAction[] = [];
  dropsUnroutable = 0;
  /** the run-wide log (timeline `log` actions), owned by the node that handles them */
  runLog: LogLine[] | null = null;

  constructor(
    readonly id: number,
    readonly name: string,
  ) {}

  egressPort(destination: number): number {
    if (this.ports.length === 1) return 0;
    return this.route === null || destination < 0 || destination >= this.route.length ? -1 : this.route[destination]!;
  }

  /** Puts a frame on a port: drop-tail queue if the transmitter is busy. */
  transmit(portIndex: number, packet: Packet, sim: Partition): void {
    const tx = this.ports[portIndex]!.tx;
    if (!tx.up) {
      tx.stats.dropsDown++;
      return;
    }
    if (tx.tooBig(packet)) {
      tx.stats.dropsMtu++;
      return;
    }
    if (tx.busy) {
      if (tx.fits(packet)) tx.enqueue(packet);
      else tx.stats.dropsQueue++;
      return;
    }
    this.startTransmission(portIndex, packet, sim);
  }

  private startTransmission(portIndex: number, packet: Packet, sim: Partition): void {
    const port = this.ports[portIndex]!;
    const tx = port.tx;
    const serialisation = tx.serialisationNs(packet);
    const depart = sim.now + serialisation;
    tx.busy = true;
    tx.stats.busyNs += serialisation;
    tx.stats.packets++;
    tx.stats.bytes += packet.wireBytes;
    tx.capture?.push({ timeNs: sim.now, direction: tx.direction, packet });
    sim.schedule(this, depart, this.id, EventKind.TxDone, portIndex, null);
    if (tx.lossRate > 0 && tx.rng.chance(tx.lossRate)) {
      tx.stats.dropsLoss++;
      this.trace.detail(-1);
      return;
    }
    const arrival = tx.arrivalNs(depart);
    port.liveInbox?.push({ timeNs: arrival, packet });
    sim.schedule(this, arrival, port.peer, EventKind.Arrive, port.peerPort, packet);
  }

  handle(event: SimEvent, sim: Partition): void {
    switch (event.kind) {
      case EventKind.TxDone: {
        const tx = this.ports[event.arg]!.tx;
        tx.busy = false;
        const next = tx.dequeue();
        if (next !== undefined) this.startTransmission(event.arg, next, sim);
        return;
      }
      case EventKind.Action:
        this.act(this.actions[event.arg]!, sim);
        return;
      default:
        this.handleOther(event, sim);
    }
  }

  protected abstract handleOther(event: SimEvent, sim: Partition): void;

  private act(action: NodeAction, sim: Partition): void {
    if (action.type === 'log') {
      this.runLog?.push({ timeNs: sim.now, line: action.text ?? '' });
      return;
    }
    const tx = this.ports[action.port]!.tx;
    if (action.type === 'link-down') {
      tx.up = false;
      tx.flush();
    } else if (action.type === 'link-up') {
      tx.up = true;
    } else if (action.changes !== undefined) {
      tx.apply(action.changes);
    }
  }
}

export interface HostStats {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  dropsNotForMe: number;
}

export class HostNode extends NetworkNode {
  readonly apps: ModelApp[] = [];
  readonly log: LogLine[] = [];
  readonly stats: HostStats = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, dropsNotForMe: 0 };
  private ipId = 0;

  constructor(
    id: number,
    name: string,
    readonly hostIndex: number,
    readonly ip: number,
    /** owner host index of an IPv4 address (for ARP), -1 if none */
    readonly ownerOf: (ip: number) => number,
  ) {
    super(id, name);
  }

  nextIpId(): number {
    return this.ipId++ & 0xffff;
  }

  /** MTU of the port toward a destination (for segmenting messages). */
  mtuTo(destination: number): number {
    const port = this.egressPort(destination);
    return port < 0 ? 1500 : this.ports[port]!.tx.mtuBytes;
  }

  /** Sends a frame from this host; ARP is answered by the network at once. */
  send(packet: Packet, sim: Partition): void {
    if (etherType(packet) === ETHERTYPE_ARP) {
      const reply = arpReply(packet, this.ownerOf);
      if (reply !== null) sim.schedule(this, sim.now, this.id, EventKind.Arrive, 0, reply);
      return;
    }
    const port = this.egressPort(destinationIndex(packet));
    if (port < 0) {
      this.dropsUnroutable++;
      return;
    }
    this.stats.txPackets++;
    this.stats.txBytes += packet.wireBytes;
    this.transmit(port, packet, sim);
  }

  protected handleOther(event: SimEvent, sim: Partition): void {
    if (event.kind === EventKind.App) {
      this.apps[event.arg]!.onTimer(this, sim);
      return;
    }
    if (event.kind !== EventKind.Arrive) return;
    const packet = event.data as Packet;
    const destination = destinationIndex(packet);
    if (destination !== this.hostIndex && etherType(packet) !== ETHERTYPE_ARP) {
      this.stats.dropsNotForMe++;
      return;
    }
    this.stats.rxPackets++;
    this.stats.rxBytes += packet.wireBytes;
    const frame = parseFrame(packet);
    if (frame === null) return;
    for (const app of this.apps) if (app.receive(this, frame, packet, sim)) return;
  }

  print(sim: Partition, line: string): void {
    this.log.push({ timeNs: sim.now, line });
  }
}

export class SwitchNode extends NetworkNode {
  forwarded = 0;

  constructor(
    id: number,
    name: string,
    /** store-and-forward processing delay */
    readonly latencyNs: number,
  ) {
    super(id, name);
  }

  protected handleOther(event: SimEvent, sim: Partition): void {
    if (event.kind === EventKind.Arrive && this.latencyNs > 0) {
      sim.schedule(this, sim.now + this.latencyNs, this.id, EventKind.Forward, 0, event.data);
      return;
    }
    if (event.kind !== EventKind.Arrive && event.kind !== EventKind.Forward) return;
    const packet = event.data as Packet;
    const port = this.egressPort(destinationIndex(packet));
    if (port < 0) {
      this.dropsUnroutable++;
      return;
    }
    this.forwarded++;
    this.transmit(port, packet, sim);
  }
}
