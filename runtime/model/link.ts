// One direction of a duplex link, owned by the transmitting node: a drop-tail
// queue, a transmitter (serialisation at the link rate), then propagation
// (latency + seeded jitter that never reorders) and seeded loss.
import type { PlanLink, PlanLinkSettings, PlanQueue } from '../../dsl/plan.ts';
import { DEFAULT_QUEUE_PACKETS } from '../core/limits.ts';
import { Rng } from '../core/random.ts';
import { serialisationNs } from '../core/time.ts';
import type { Packet } from './packet.ts';
import { ETH_HEADER } from './packet.ts';

export interface DirectionStats {
  packets: number;
  bytes: number;
  dropsQueue: number;
  dropsLoss: number;
  dropsDown: number;
  dropsMtu: number;
  /** ns the transmitter was busy (for utilisation) */
  busyNs: number;
  /** largest queue seen, in packets */
  maxQueuePackets: number;
}

export interface CaptureRecord {
  timeNs: number;
  /** 0: a→b, 1: b→a */
  direction: number;
  packet: Packet;
}

export class LinkDirection {
  up = true;
  latencyNs: number;
  bandwidthBitsPerSec: number | null;
  lossRate: number;
  jitterNs: number;
  queueLimit: PlanQueue;
  mtuBytes: number;
  readonly queue: Packet[] = [];
  queueHead = 0;
  queuedBytes = 0;
  busy = false;
  /** arrival time of the last packet sent: jitter never reorders */
  lastArrivalNs = 0;
  readonly stats: DirectionStats = { packets: 0, bytes: 0, dropsQueue: 0, dropsLoss: 0, dropsDown: 0, dropsMtu: 0, busyNs: 0, maxQueuePackets: 0 };
  readonly rng: Rng;

  constructor(
    readonly link: PlanLink,
    /** 0: from link.a to link.b; 1: the other way */
    readonly direction: number,
    seed: number,
    /** the transmitting switch's defaults, when the link sets none */
    defaults: { bandwidthBitsPerSec: number | null; queue: PlanQueue } | null,
    readonly capture: CaptureRecord[] | null,
  ) {
    this.latencyNs = link.latencyNs;
    this.bandwidthBitsPerSec = link.bandwidthBitsPerSec ?? defaults?.bandwidthBitsPerSec ?? null;
    this.lossRate = link.lossRate;
    this.jitterNs = link.jitterNs;
    this.queueLimit = link.queue ?? defaults?.queue ?? null;
    this.mtuBytes = link.mtuBytes;
    this.rng = new Rng(seed, `link:${link.name}:${direction}`);
  }

  get queueLength(): number {
    return this.queue.length - this.queueHead;
  }

  /** Whether one more packet fits the drop-tail queue. */
  fits(packet: Packet): boolean {
    const limit = this.queueLimit;
    if (limit === null) return this.queueLength < DEFAULT_QUEUE_PACKETS;
    if ('packets' in limit) return this.queueLength < limit.packets;
    return this.queuedBytes + packet.wireBytes <= limit.bytes;
  }

  enqueue(packet: Packet): void {
    this.queue.push(packet);
    this.queuedBytes += packet.wireBytes;
    const length = this.queueLength;
    if (length > this.stats.maxQueuePackets) this.stats.maxQueuePackets = length;
  }

  dequeue(): Packet | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const packet = this.queue[this.queueHead]!;
    this.queue[this.queueHead++] = undefined as unknown as Packet;
    // compact now and then so the array does not grow without bound
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    this.queuedBytes -= packet.wireBytes;
    return packet;
  }

  /** Drops everything queued (link down). Returns how many. */
  flush(): number {
    const n = this.queueLength;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.stats.dropsDown += n;
    return n;
  }

  tooBig(packet: Packet): boolean {
    return packet.wireBytes - ETH_HEADER > this.mtuBytes;
  }

  serialisationNs(packet: Packet): number {
    return serialisationNs(packet.wireBytes, this.bandwidthBitsPerSec);
  }

  /** Arrival time at the far end for a frame whose last bit leaves at `departNs`. */
  arrivalNs(departNs: number): number {
    const jitter = this.jitterNs > 0 ? Math.floor(this.rng.next() * (this.jitterNs + 1)) : 0;
    const arrival = Math.max(departNs + this.latencyNs + jitter, this.lastArrivalNs);
    this.lastArrivalNs = arrival;
    return arrival;
  }

  apply(changes: Partial<PlanLinkSettings>): void {
    if (changes.latencyNs !== undefined) this.latencyNs = changes.latencyNs;
    if (changes.bandwidthBitsPerSec !== undefined) this.bandwidthBitsPerSec = changes.bandwidthBitsPerSec;
    if (changes.lossRate !== undefined) this.lossRate = changes.lossRate;
    if (changes.jitterNs !== undefined) this.jitterNs = changes.jitterNs;
    if (changes.queue !== undefined) this.queueLimit = changes.queue;
    if (changes.mtuBytes !== undefined) this.mtuBytes = changes.mtuBytes;
  }
}
