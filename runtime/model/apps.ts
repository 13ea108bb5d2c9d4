// Model apps (LANGUAGE.md `app`): onoff (constant-rate UDP bursts), sink
// (counts what arrives), echo (answers UDP datagrams and TCP-like requests),
// request (periodic TCP-like request/reply, measuring round-trip latency).
// Apps print lines to their host's log, so `metric … from HOST match` works on
// model hosts exactly as on live ones.
import type { PlanApp } from '../../dsl/plan.ts';
import type { Partition } from '../core/partition.ts';
import { Rng } from '../core/random.ts';
import { EventKind, type HostNode } from './nodes.ts';
import { APP_HEADER, AppMessage, buildFrame, IPV4_HEADER, PROTO_TCP, PROTO_UDP, TCP_HEADER, UDP_HEADER, type Packet, type ParsedFrame } from './packet.ts';

export interface HostDirectory {
  /** component id and host index and IPv4 address of a host, by name */
  lookup(name: string): { hostIndex: number; ip: number };
}

export interface ModelApp {
  readonly kind: PlanApp['kind'];
  start(host: HostNode, sim: Partition): void;
  onTimer(host: HostNode, sim: Partition): void;
  /** true when the packet was for this app */
  receive(host: HostNode, frame: ParsedFrame, packet: Packet, sim: Partition): boolean;
  /** printed to the host log when the run ends */
  finish(host: HostNode, endNs: number): string | null;
}

const EPHEMERAL_PORT_BASE = 40000;

function ms(ns: number): string {
  return (ns / 1e6).toFixed(6);
}

export class OnOffApp implements ModelApp {
  readonly kind = 'onoff';
  private periodStartNs = 0;
  private sentInPeriod = 0;
  sent = 0;
  private readonly bitsPerPacket: number;

  private readonly rng: Rng | null;

  constructor(
    private readonly index: number,
    private readonly app: PlanApp & { kind: 'onoff' },
    private readonly target: { hostIndex: number; ip: number },
    seed: number,
    hostName: string,
  ) {
    this.bitsPerPacket = app.sizeBytes * 8;
    this.rng = app.arrivals === 'poisson' ? new Rng(seed, `app:${hostName}:${index}`) : null;
  }

  start(host: HostNode, sim: Partition): void {
    sim.schedule(host, 0, host.id, EventKind.App, this.index, null);
  }

  /** Sends one packet, then schedules the next: t_k = period start + k·size/rate (no drift). */
  onTimer(host: HostNode, sim: Partition): void {
    const udpPayload = this.app.sizeBytes - IPV4_HEADER - UDP_HEADER;
    host.send(
      buildFrame({
        srcIndex: host.hostIndex, dstIndex: this.target.hostIndex, srcIp: host.ip, dstIp: this.target.ip,
        protocol: PROTO_UDP, srcPort: EPHEMERAL_PORT_BASE + this.index, dstPort: this.app.port,
        ipBytes: IPV4_HEADER + UDP_HEADER + Math.max(udpPayload, APP_HEADER), ipId: host.nextIpId(),
        app: { message: AppMessage.Data, requestId: 0, segment: this.sent, totalBytes: this.app.sizeBytes, replyBytes: 0, sentNs: sim.now },
      }),
      sim,
    );
    this.sent++;
    this.sentInPeriod++;
    const meanGapNs = (this.bitsPerPacket * 1e9) / this.app.rateBitsPerSec;
    let next =
      this.rng === null
        ? this.periodStartNs + Math.ceil(this.sentInPeriod * meanGapNs)
        : sim.now + Math.max(1, Math.round(this.rng.exponential(meanGapNs)));
    if (next >= this.periodStartNs + this.app.onNs) {
      next = this.periodStartNs + this.app.onNs + this.app.offNs;
      this.periodStartNs = next;
      this.sentInPeriod = 0;
    }
    if (Number.isSafeInteger(next)) sim.schedule(host, next, host.id, EventKind.App, this.index, null);
  }

  receive(): boolean {
    return false;
  }

  finish(): string {
    return `onoff to=${this.app.to} sent=${this.sent}`;
  }
}

export class SinkApp implements ModelApp {
  readonly kind = 'sink';
  packets = 0;
  bytes = 0;
  private delaySumNs = 0;
  private delayMinNs = Infinity;
  private delayMaxNs = 0;

  constructor(private readonly app: PlanApp & { kind: 'sink' }) {}

  start(): void {}
  onTimer(): void {}

  receive(_host: HostNode, frame: ParsedFrame, packet: Packet, sim: Partition): boolean {
    if (frame.dstPort !== this.app.port) return false;
    this.packets++;
    this.bytes += packet.wireBytes;
    if (frame.app !== null) {
      const delay = sim.now - frame.app.sentNs;
      this.delaySumNs += delay;
      if (delay < this.delayMinNs) this.delayMinNs = delay;
      if (delay > this.delayMaxNs) this.delayMaxNs = delay;
    }
    return true;
  }

  finish(_host: HostNode, endNs: number): string {
    const mean = this.packets === 0 ? 0 : this.delaySumNs / this.packets;
    const rate = endNs === 0 ? 0 : (this.bytes * 8 * 1e9) / endNs / 1e6;
    const min = this.packets === 0 ? 0 : this.delayMinNs;
    return `sink port=${this.app.port} packets=${this.packets} bytes=${this.bytes} mbps=${rate.toFixed(6)} mean_delay_ms=${ms(mean)} min_delay_ms=${ms(min)} max_delay_ms=${ms(this.delayMaxNs)}`;
  }
}

/** Splits a message into TCP-like segments of at most `mss` payload bytes (each ≥ the app header). */
function segments(totalBytes: number, mss: number): number[] {
  const sizes: number[] = [];
  for (let left = totalBytes; left > 0; left -= mss) sizes.push(Math.max(Math.min(left, mss), APP_HEADER));
  return sizes.length === 0 ? [APP_HEADER] : sizes;
}

function sendMessage(
  host: HostNode, sim: Partition, target: { hostIndex: number; ip: number }, srcPort: number, dstPort: number,
  message: AppMessage, requestId: number, totalBytes: number, replyBytes: number, sentNs: number,
): void {
  const mss = host.mtuTo(target.hostIndex) - IPV4_HEADER - TCP_HEADER;
  let offset = 0;
  segments(totalBytes, mss).forEach((payload, segment) => {
    host.send(
      buildFrame({
        srcIndex: host.hostIndex, dstIndex: target.hostIndex, srcIp: host.ip, dstIp: target.ip, protocol: PROTO_TCP,
        srcPort, dstPort, ipBytes: IPV4_HEADER + TCP_HEADER + payload, tcpSeq: offset, ipId: host.nextIpId(),
        app: { message, requestId, segment, totalBytes, replyBytes, sentNs },
      }),
      sim,
    );
    offset += payload;
  });
}

export class EchoApp implements ModelApp {
  readonly kind = 'echo';
  requests = 0;
  datagrams = 0;
  /** bytes received so far of each request, by "srcIndex:srcPort:requestId" */
  private readonly partial = new Map<string, number>();

  constructor(private readonly app: PlanApp & { kind: 'echo' }) {}

  start(): void {}
  onTimer(): void {}

  receive(host: HostNode, frame: ParsedFrame, _packet: Packet, sim: Partition): boolean {
    if (frame.dstPort !== this.app.port) return false;
    const peer = { hostIndex: frame.srcIndex, ip: frame.srcIp };
    if (frame.protocol === PROTO_UDP) {
      // RFC 862: send the datagram back
      this.datagrams++;
      host.send(
        buildFrame({
          srcIndex: host.hostIndex, dstIndex: frame.srcIndex, srcIp: host.ip, dstIp: frame.srcIp, protocol: PROTO_UDP,
          srcPort: frame.dstPort, dstPort: frame.srcPort, ipBytes: frame.ipBytes, ipId: host.nextIpId(),
          app: frame.app ?? { message: AppMessage.Data, requestId: 0, segment: 0, totalBytes: frame.ipBytes, replyBytes: 0, sentNs: sim.now },
        }),
        sim,
      );
      return true;
    }
    const app = frame.app;
    if (app === null || app.message !== AppMessage.Request) return true;
    const key = `${frame.srcIndex}:${frame.srcPort}:${app.requestId}`;
    const received = (this.partial.get(key) ?? 0) + frame.payloadBytes;
    if (received < app.totalBytes) {
      this.partial.set(key, received);
      return true;
    }
    this.partial.delete(key);
    this.requests++;
    sendMessage(host, sim, peer, frame.dstPort, frame.srcPort, AppMessage.Reply, app.requestId, app.replyBytes, 0, app.sentNs);
    return true;
  }

  finish(): string {
    return `echo port=${this.app.port} requests=${this.requests} datagrams=${this.datagrams}`;
  }
}

export class RequestApp implements ModelApp {
  readonly kind = 'request';
  private nextId = 0;
  completed = 0;
  private readonly partial = new Map<number, number>();
  private readonly srcPort: number;

  constructor(
    private readonly index: number,
    private readonly app: PlanApp & { kind: 'request' },
    private readonly target: { hostIndex: number; ip: number },
  ) {
    this.srcPort = EPHEMERAL_PORT_BASE + 1000 + index;
  }

  start(host: HostNode, sim: Partition): void {
    sim.schedule(host, 0, host.id, EventKind.App, this.index, null);
  }

  onTimer(host: HostNode, sim: Partition): void {
    sendMessage(host, sim, this.target, this.srcPort, this.app.port, AppMessage.Request, this.nextId++, this.app.sizeBytes, this.app.replyBytes, sim.now);
    sim.schedule(host, sim.now + this.app.everyNs, host.id, EventKind.App, this.index, null);
  }

  receive(host: HostNode, frame: ParsedFrame, _packet: Packet, sim: Partition): boolean {
    if (frame.dstPort !== this.srcPort || frame.app === null || frame.app.message !== AppMessage.Reply) return false;
    const id = frame.app.requestId;
    const received = (this.partial.get(id) ?? 0) + frame.payloadBytes;
    if (received < frame.app.totalBytes) {
      this.partial.set(id, received);
      return true;
    }
    this.partial.delete(id);
    this.completed++;
    host.print(sim, `request id=${id} to=${this.app.to} rtt_ms=${ms(sim.now - frame.app.sentNs)}`);
    return true;
  }

  finish(): string {
    return `request to=${this.app.to} sent=${this.nextId} completed=${this.completed} lost=${this.nextId - this.completed - this.partial.size}`;
  }
}

export function createApp(index: number, app: PlanApp, directory: HostDirectory, seed: number, hostName: string): ModelApp {
  switch (app.kind) {
    case 'onoff':
      return new OnOffApp(index, app, directory.lookup(app.to), seed, hostName);
    case 'sink':
      return new SinkApp(app);
    case 'echo':
      return new EchoApp(app);
    case 'request':
      return new RequestApp(index, app, directory.lookup(app.to));
  }
}
