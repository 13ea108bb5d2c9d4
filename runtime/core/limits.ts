// Limits of the simulation core, each with its reason (STYLE.md: limits on everything).

/** Pending events: a heap of 64M objects is ~6 GB; beyond that a model is leaking events. */
export const MAX_PENDING_EVENTS = 64 * 1024 * 1024;
/** A frame larger than this is a bug in a model (jumbo frames are 9 kB). */
export const MAX_FRAME_BYTES = 65_536 + 14;
/** Default drop-tail queue of a link direction when the scenario sets none (Linux txqueuelen). */
export const DEFAULT_QUEUE_PACKETS = 1000;
/** Partitions of one run. */
export const MAX_PARTITIONS = 1024;
/** Bytes of a packet kept in a pcap record (headers and the app header, padded with zeros). */
export const PCAP_SNAPLEN = 65_535;
/** Latency samples kept per metric for percentiles; beyond it, reservoir sampling (seeded). */
export const MAX_SAMPLES_PER_METRIC = 1_000_000;
