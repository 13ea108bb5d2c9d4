// A live (process) host as a node of the simulated network: frames its cell
// sends enter the network at the virtual time they were read from the tap;
// frames for it are collected in `inbox` when their transmission starts, so
// the live scheduler can write each into the tap at its arrival time.
import type { SimEvent } from '../core/events.ts';
import type { Partition } from '../core/partition.ts';
import { EventKind, HostNode, type LiveInbox } from '../model/nodes.ts';
import { destinationIndex, type Packet } from '../model/packet.ts';

export class LiveHostNode extends HostNode {
  readonly inbox: LiveInbox = [];
  /** frames sent by the cell that had no route (broadcast, multicast, IPv6) */
  dropsUnsupported = 0;

  protected override handleOther(event: SimEvent, sim: Partition): void {
    if (event.kind === EventKind.LiveSend) {
      const packet = event.data as Packet;
      const port = this.egressPort(destinationIndex(packet));
      if (port < 0) {
        this.dropsUnsupported++;
        return;
      }
      this.stats.txPackets++;
      this.stats.txBytes += packet.wireBytes;
      this.transmit(port, packet, sim);
      return;
    }
    if (event.kind === EventKind.Arrive) {
      // already queued in `inbox` when its transmission started; count it here, at its arrival
      const packet = event.data as Packet;
      this.stats.rxPackets++;
      this.stats.rxBytes += packet.wireBytes;
    }
  }
}

/** Model frames carry only headers; a cell's tap or a guest needs the whole frame (zero payload). */
export function frameBytes(bytes: Uint8Array, wireBytes: number): Uint8Array {
  if (bytes.length >= wireBytes) return bytes;
  const out = new Uint8Array(wireBytes);
  out.set(bytes);
  return out;
}
