// `livestack agent`: serves one partition of a distributed run at a time over the
// wire protocol (wire.ts). Every connection first proves it knows the token;
// anything malformed, oversized, unauthenticated or of another version is logged
// and dropped, and the agent goes on serving the next connection. When the run
// ends or its coordinator goes away (closed socket, heartbeat timeout), the
// partition is dropped, and the process cells of its process hosts (namespaces,
// cgroups, taps, processes) are torn down.
import { createServer, type Server, type Socket } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { planFromJson } from '../../dsl/plan.ts';
import type { SimEvent } from '../core/events.ts';
import { formatVirtual } from '../core/time.ts';
import { LiveScheduler } from '../live/scheduler.ts';
import type { SocketSpinner } from '../../ffi/sync.ts';
import { SPIN_BUDGET_NS, spinnerFor, spinUntil } from './spin.ts';
import { buildPart, deliverToPart, finishPart, type BuiltPart, type PartLive } from './part.ts';
import {
  EventWriter, FrameType, jsonPayload, MAX_FRAME_BYTES, newNonce, NONCE_BYTES, parseJson, proof, proofMatches, PROOF_BYTES,
  readGroups, sendWithEvents, WIRE_VERSION, WireConnection, WireError, type Frame,
} from './wire.ts';

export interface AgentOptions {
  /** address to listen on; port 0 picks a free port */
  host: string;
  port: number;
  token: Buffer;
  name: string;
  /** one line per connection event (stderr in the CLI) */
  log: (line: string) => void;
  heartbeatMs?: number;
  /** the coordinator is declared gone after this long without a frame */
  timeoutMs?: number;
  /** a connection must authenticate within this */
  handshakeTimeoutMs?: number;
  /** what the agent reports in its welcome (doctor report, cores, liveHosts); computed once, on the first connection */
  capabilities?: () => Record<string, unknown>;
}

/** Done's liveState: the part has no process hosts… */
export const LIVE_NONE = -1;
/** …or its commands still run (for the plan's `until`); ≥ 0: they all ended, at that virtual time. */
export const LIVE_RUNNING = -2;

/** The plan part a coordinator sends (Plan frame). */
export interface PlanMessage {
  /** canonical plan JSON (planFromJson checks its version) */
  plan: string;
  assignment: number[];
  index: number;
  partitions: number;
  runId: string;
  /** the coordinator's heartbeat period: the agent sends its own at least as often */
  heartbeatMs?: number;
  /** kvm vm hosts of this part: host name -> guest image (ELF, base64), built by the coordinator */
  images?: Record<string, string>;
}

export interface PeersMessage {
  peers: Array<{ index: number; host: string; port: number }>;
  windowNs: number;
  endNs: number;
  /** every partition's next event time at the start (null: none) */
  nexts: Array<number | null>;
  progressMs: number;
}

export interface StoppedMessage {
  reachedNs: number;
  rounds: number;
  nullRounds: number;
  eventsSent: number;
  busyNs: number;
  events: number;
  /** why the loop ended early (a lost peer), or null */
  problem: string | null;
}

interface DirectRun {
  peers: Map<number, WireConnection>;
  expected: number;
  windowNs: number;
  endNs: number;
  progressMs: number;
  round: number;
  /** the start of this round's window: the earliest next event or event in transit anywhere */
  startNs: number;
  /** this round's Round messages are out; ownMin = min(own next event, earliest event sent) */
  ownSent: boolean;
  ownMin: number;
  /** Round messages of peers, by round (a peer may be one round ahead) */
  received: Map<number, { count: number; min: number; events: SimEvent[] }>;
  /** Events chunks of a peer's next Round message */
  chunks: Map<number, SimEvent[]>;
  started: boolean;
  stopRequested: boolean;
  stopped: boolean;
  closing: boolean;
  lastProgressMs: number;
  lastYieldMs: number;
  stats: { reachedNs: number; rounds: number; nullRounds: number; eventsSent: number; busyNs: number };
  /** spin-waits for peers' Round messages (ffi/sync.ts); null: wait in the event loop only */
  spinner: SocketSpinner | null;
  /** the connections the spinner reads, in its fd order (peers, then the coordinator) */
  spinConnections: WireConnection[];
}


export interface ReadyMessage {
  components: number;
  nextEventTime: number | null;
}

export interface HelloMessage {
  name: string;
  wireVersion: number;
  host: string;
}

/** LIVESTACK_TEST_PEERS_DELAY_MS: tests only; the agent handles a Peers frame this late (a slow agent). */
const PEERS_DELAY_MS = Number(process.env['LIVESTACK_TEST_PEERS_DELAY_MS'] ?? 0) || 0;
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** A window runs in this many virtual slices at least… */
const WINDOW_SLICES = 16;
/** …and lets the event loop run (heartbeats) after this much wall time (or half a heartbeat period, if shorter). */
const YIELD_AFTER_MS = 200;

export class Agent {
  private server: Server | null = null;
  private capabilitiesCache: Record<string, unknown> | null = null;
  /** the session running a plan, if any: one run at a time */
  private running: Session | null = null;
  private readonly sessions = new Set<Session>();
  readonly counts = { connections: 0, rejected: 0, runs: 0 };

  constructor(readonly options: AgentOptions) {}

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.accept(socket));
      server.on('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        server.on('error', (error) => this.options.log(`agent ${this.options.name}: listener error: ${error.message}`));
        this.server = server;
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('the listener has no TCP address');
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops listening and drops every session; resolves once their cells are torn down. */
  async close(): Promise<void> {
    for (const session of this.sessions) session.connection.close('the agent is shutting down');
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    while (this.teardowns.size > 0) await Promise.all([...this.teardowns]);
  }

  /** cell teardowns under way (close() waits for them) */
  private readonly teardowns = new Set<Promise<void>>();

  /** @internal */
  track(work: Promise<void>): void {
    this.teardowns.add(work);
    void work.finally(() => this.teardowns.delete(work));
  }

  get busy(): boolean {
    return this.running !== null;
  }

  capabilities(): Record<string, unknown> {
    if (this.capabilitiesCache === null) {
      const extra = this.options.capabilities?.() ?? {};
      this.capabilitiesCache = { name: this.options.name, host: hostname(), cores: availableParallelism(), pid: process.pid, node: process.version, wireVersion: WIRE_VERSION, liveHosts: false, ...extra };
    }
    return this.capabilitiesCache;
  }

  private accept(socket: Socket): void {
    this.counts.connections++;
    const session = new Session(this, socket);
    this.sessions.add(session);
    session.connection.onClose = (reason, error) => {
      this.sessions.delete(session);
      session.ended(reason, error);
    };
    session.start();
  }

  /** @internal */
  claim(session: Session): boolean {
    if (this.running !== null && this.running !== session) return false;
    this.running = session;
    return true;
  }

  /** @internal the session running run `runId`, if any */
  runningSession(runId: string): Session | null {
    return this.running !== null && this.running.runId === runId ? this.running : null;
  }

  /** @internal */
  release(session: Session): void {
    if (this.running === session) this.running = null;
  }
}

type State = 'hello' | 'authenticated' | 'running' | 'finished' | 'peer';

class Session {
  readonly connection: WireConnection;
  private state: State = 'hello';
  private readonly nonce = newNonce();
  private readonly peer: string;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private part: BuiltPart | null = null;
  runId = '';
  /** direct mode: this agent's side of the agent-to-agent loop */
  private direct: DirectRun | null = null;
  /** direct mode: peers that joined before this agent had the coordinator's Peers frame, with what they sent */
  private early = new Map<number, { connection: WireConnection; frames: Frame[] }>();
  private earlyLoss: string | null = null;
  /** a peer session (an agent connected for direct mode): the run it serves and the peer's index */
  private peerOf: { session: Session; index: number } | null = null;
  private inbound: SimEvent[] = [];
  private readonly writer = new EventWriter();
  /** a window is running in slices (between two of them, the event loop runs) */
  private advancing = false;
  /** star mode: a Done went out and no Advance or Finish has come since */
  private awaitingAdvance = false;
  /** star mode, model hosts only: spins on the coordinator's socket for the next Advance (spinForAdvance) */
  private advanceSpinner: SocketSpinner | null = null;
  private spinningForAdvance = false;
  /** the process cells of this part's process hosts, if it has any */
  private scheduler: LiveScheduler | null = null;
  /** cells being set up or torn down: the session's end waits for it */
  private liveWork: Promise<void> = Promise.resolve();

  constructor(
    private readonly agent: Agent,
    socket: Socket,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const o = agent.options;
    this.connection = new WireConnection(socket, { label: `coordinator ${this.peer}`, heartbeatMs: o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    this.connection.onFrame = (frame) => this.onFrame(frame);
  }

  private log(line: string): void {
    this.agent.options.log(`agent ${this.agent.options.name}: ${line}`);
  }

  start(): void {
    const hello: HelloMessage = { name: this.agent.options.name, wireVersion: WIRE_VERSION, host: hostname() };
    this.connection.sendParts(FrameType.Hello, [this.nonce, jsonPayload(hello)]);
    const limit = this.agent.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'hello') this.connection.fail(`handshake not completed within ${(limit / 1000).toFixed(1)} s`, new WireError('auth', 'handshake timeout'));
    }, limit);
  }

  ended(reason: string, error: WireError | null): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.state === 'peer') {
      this.peerOf?.session.peerLost(this.peerOf.index, reason);
      this.peerOf = null;
      return;
    }
    if (this.state === 'hello' || error !== null) {
      this.agent.counts.rejected++;
      this.log(`rejected connection from ${this.peer}: ${reason}`);
    } else if (this.state === 'running') {
      const reached = this.part === null ? '' : ` at virtual ${formatVirtual(this.part.partition.now)}`;
      this.log(`run ${this.runId} from ${this.peer} abandoned${reached}: ${reason}; partition dropped`);
    } else if (this.state === 'finished') {
      this.log(`run ${this.runId} from ${this.peer} finished`);
    } else {
      this.log(`connection from ${this.peer} closed before a plan: ${reason}`);
    }
    // nothing of the run survives the session: the partition, its network, queues and peer links go with it,
    // and its cells (the next run waits until they are gone)
    this.endDirect();
    this.dropEarlyPeers();
    this.part = null;
    this.inbound = [];
    const scheduler = this.scheduler;
    this.scheduler = null;
    if (scheduler === null) {
      // a teardown already under way (Finish) keeps the agent busy until it is through
      void this.liveWork.finally(() => this.agent.release(this));
      return;
    }
    this.agent.track(this.liveWork
      .then(() => scheduler.teardown())
      .catch((error: unknown) => this.log(`run ${this.runId}: tearing its cells down: ${(error as Error).message}`))
      .finally(() => {
        this.log(`run ${this.runId}: cells torn down`);
        this.agent.release(this);
      }));
  }

  private onFrame(frame: Frame): void {
    switch (this.state) {
      case 'hello':
        if (frame.type !== FrameType.Auth) throw new WireError('order', `expected an Auth frame first, got frame type ${frame.type}`);
        this.authenticate(frame.payload);
        return;
      case 'peer':
        this.peerOf!.session.onPeerFrame(this.peerOf!.index, frame);
        return;
      case 'authenticated':
        if (frame.type === FrameType.Abort) return this.connection.close('the coordinator ended the session');
        if (frame.type === FrameType.Join) return this.join(frame.payload);
        if (frame.type !== FrameType.Plan) throw new WireError('order', `expected a Plan frame, got frame type ${frame.type}`);
        this.plan(frame.payload);
        return;
      case 'running':
        this.running(frame);
        return;
      case 'finished':
        if (frame.type === FrameType.Abort) return this.connection.close('the run is over');
        throw new WireError('order', `frame type ${frame.type} after the results were sent`);
    }
  }

  private authenticate(payload: Buffer): void {
    if (payload.length !== NONCE_BYTES + PROOF_BYTES) throw new WireError('malformed', `Auth frame of ${payload.length} bytes (expected ${NONCE_BYTES + PROOF_BYTES})`);
    const coordinatorNonce = payload.subarray(0, NONCE_BYTES);
    const expected = proof(this.agent.options.token, 'coordinator', this.nonce, coordinatorNonce);
    if (!proofMatches(expected, payload.subarray(NONCE_BYTES))) {
      throw new WireError('auth', `authentication failed: the coordinator's proof does not match agent ${this.agent.options.name}'s token (use the same --token-file on the coordinator and every agent)`);
    }
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.state = 'authenticated';
    this.connection.reader.maxFrameBytes = MAX_FRAME_BYTES;
    this.connection.sendParts(FrameType.Welcome, [proof(this.agent.options.token, 'agent', coordinatorNonce, this.nonce), jsonPayload(this.agent.capabilities())]);
    this.connection.startHeartbeats();
    this.log(`coordinator ${this.peer} authenticated`);
  }

  private plan(payload: Buffer): void {
    const message = parseJson<PlanMessage>(payload, 'Plan');
    if (!this.agent.claim(this)) {
      this.connection.fail(`agent ${this.agent.options.name} is busy with another run; try again when it ends`);
      return;
    }
    this.runId = String(message.runId);
    if (typeof message.heartbeatMs === 'number') this.connection.heartbeatAtLeastEvery(Math.max(10, message.heartbeatMs));
    try {
      if (!Array.isArray(message.assignment) || !Number.isInteger(message.index) || !Number.isInteger(message.partitions)) throw new Error('the plan part lacks its assignment, index or partition count');
      const plan = planFromJson(message.plan);
      this.part = buildPart({ plan, assignment: Int32Array.from(message.assignment), index: message.index, partitions: message.partitions });
    } catch (error) {
      this.agent.release(this);
      this.connection.fail(`agent ${this.agent.options.name} cannot run this plan: ${(error as Error).message}`);
      return;
    }
    this.state = 'running';
    this.agent.counts.runs++;
    const part = this.part;
    const live = part.liveNodes.size;
    this.log(`run ${this.runId} from ${this.peer}: partition ${message.index + 1}/${message.partitions}, ${part.own.length} components${live > 0 ? `, ${live} process host(s)` : ''}`);
    if (live === 0) return this.sendReady();
    if (this.agent.capabilities()['liveHosts'] !== true) {
      this.connection.fail(`agent ${this.agent.options.name} cannot run process hosts here (${part.liveNodes.keys().next().value} …): process cells need root, network namespaces and cgroups (run livestack doctor on it)`);
      return;
    }
    const images = new Map(Object.entries(message.images ?? {}).map(([name, base64]) => [name, Buffer.from(String(base64), 'base64')]));
    // no hand-off of deliveries to a spinner on the cell's core: agents sharing a machine each keep
    // spinners on the same cores, and a spinner of the other agent's (idle class too) holds the core for
    // ms at a time (two agents on one machine, with the hand-off: 2 of 6 runs of their tests lost or
    // delayed deliveries; without: 0 of 4)
    const scheduler = new LiveScheduler(part.plan, part.liveNodes, { onNotice: (line) => this.log(`run ${this.runId}: ${line}`), images, handoff: false });
    this.scheduler = scheduler;
    this.liveWork = scheduler.setup().then(
      () => {
        if (this.part === part && !this.connection.closed) this.sendReady();
      },
      (error: unknown) => {
        if (!this.connection.closed) this.connection.fail(`agent ${this.agent.options.name} could not set up its process cells: ${(error as Error).message}`);
      },
    );
  }

  private sendReady(): void {
    const next = this.nextEventTime(0);
    const ready: ReadyMessage = { components: this.part!.own.length, nextEventTime: Number.isFinite(next) ? next : null };
    this.connection.send(FrameType.Ready, jsonPayload(ready));
  }

  /** The part's next event, or the next time one of its cells needs to run (≥ reached). */
  private nextEventTime(reachedNs: number): number {
    const next = this.part!.partition.nextEventTime();
    return this.scheduler === null ? next : Math.min(next, this.scheduler.nextTime(reachedNs));
  }

  /** LIVE_NONE, LIVE_RUNNING, or when the commands ended (as the plan's \`until\` counts them). */
  private liveState(reachedNs: number): number {
    const scheduler = this.scheduler;
    if (scheduler === null) return LIVE_NONE;
    const until = this.part!.plan.until;
    const done = until.kind === 'all-exit' ? scheduler.allCommandsDone() : until.kind === 'hosts-exit' ? scheduler.hostsDone(until.hosts) : false;
    return done ? Math.max(0, scheduler.finishedAtNs ?? reachedNs) : LIVE_RUNNING;
  }

  /**
   * Runs the window [now, horizon) in virtual slices (safe: every slice ends at or before the
   * horizon, and whatever the partition sends lands at or after it). After YIELD_AFTER_MS of wall
   * time it lets the event loop run (heartbeats go out, an Abort is seen) and goes on, so a long
   * window does not look like a hung agent. Answers with Done when the window is through.
   */
  private runWindow(part: BuiltPart, horizon: number, sliceNs: number, busyNsBefore: number, onDone: (busyNs: number) => void = (busyNs) => this.sendDone(busyNs, horizon)): void {
    const partition = part.partition;
    const started = process.hrtime.bigint();
    // yield well within a heartbeat period, so the coordinator never waits a timeout for one
    const deadline = performance.now() + Math.min(YIELD_AFTER_MS, this.connection.options.heartbeatMs / 2);
    for (;;) {
      const next = partition.nextEventTime();
      if (next >= horizon) break;
      partition.advance(Math.min(horizon, next + sliceNs));
      if (performance.now() > deadline) {
        const busyNs = busyNsBefore + Number(process.hrtime.bigint() - started);
        this.advancing = true;
        setImmediate(() => {
          this.advancing = false;
          if (this.part !== part || this.connection.closed) return;
          try {
            this.runWindow(part, horizon, sliceNs, busyNs, onDone);
          } catch (error) {
            this.connection.fail(`agent ${this.agent.options.name}: ${(error as Error).message}`);
          }
        });
        return;
      }
    }
    onDone(busyNsBefore + Number(process.hrtime.bigint() - started));
  }

  private sendDone(busyNs: number, horizon: number): void {
    const partition = this.part!.partition;
    const outbox = partition.takeOutbox();
    const head = Buffer.allocUnsafe(32);
    head.writeDoubleBE(this.nextEventTime(horizon), 0);
    head.writeDoubleBE(partition.eventsHandled, 8);
    head.writeDoubleBE(busyNs, 16);
    head.writeDoubleBE(this.liveState(horizon), 24);
    sendWithEvents(this.connection, FrameType.Done, head, outbox, this.writer);
    this.awaitingAdvance = true;
    this.spinForAdvance();
  }

  // ---- direct mode ----
  //
  // Every agent runs the same rounds: it simulates [T, H = min(T + window, end)), then sends
  // every peer a Round message (its events for that peer, its next event time, the earliest
  // event it sent anyone). With the Round messages of all peers in, every agent knows every
  // next event time and every event in transit, so all compute the same next T; events sent
  // in a round land at or after its H (the window is the lookahead). No coordinator hop.

  private join(payload: Buffer): void {
    const message = parseJson<{ runId?: string; index?: number }>(payload, 'Join');
    const session = this.agent.runningSession(String(message.runId));
    if (session === null || !Number.isInteger(message.index)) {
      this.connection.fail(`agent ${this.agent.options.name} runs no run ${String(message.runId)}`);
      return;
    }
    this.state = 'peer';
    this.peerOf = { session, index: message.index! };
    session.attachPeer(message.index!, this.connection);
  }

  private startDirect(message: PeersMessage): void {
    const part = this.part!;
    if (this.direct !== null) throw new WireError('order', 'a second Peers frame');
    const nexts = message.nexts.map((n) => n ?? Infinity);
    this.direct = {
      peers: new Map(), expected: message.peers.length - 1, windowNs: message.windowNs, endNs: message.endNs, progressMs: message.progressMs,
      round: 0, startNs: Math.min(...nexts), ownSent: false, ownMin: Infinity, received: new Map(), chunks: new Map(),
      started: false, stopRequested: false, stopped: false, closing: false, lastProgressMs: performance.now(), lastYieldMs: performance.now(),
      stats: { reachedNs: 0, rounds: 0, nullRounds: 0, eventsSent: 0, busyNs: 0 },
      spinner: null, spinConnections: [],
    };
    const options = { heartbeatMs: this.connection.options.heartbeatMs, timeoutMs: this.connection.options.timeoutMs };
    // peers that joined early: attach them, then replay what they sent meanwhile
    const early = [...this.early];
    this.early.clear();
    for (const [index, { connection }] of early) this.attachPeer(index, connection);
    for (const [index, { frames }] of early) for (const frame of frames) this.onPeerFrame(index, frame);
    if (this.earlyLoss !== null) this.stopDirect(this.earlyLoss);
    // the agent with the lower index connects; both ends then hold one WireConnection per peer
    for (const peer of message.peers) {
      if (peer.index <= part.index) continue;
      void (async () => {
        const { AgentLink } = await import('./coordinator.ts');
        const link = await AgentLink.connect({ host: peer.host, port: peer.port, name: null }, this.agent.options.token, options);
        link.ending = true; // from now on, its closing is reported by this session
        const connection = link.connection;
        connection.send(FrameType.Join, jsonPayload({ runId: this.runId, index: part.index }));
        // handlers first: attaching the last peer starts the loop, which may read this connection at once
        connection.onFrame = (frame) => this.onPeerFrame(peer.index, frame);
        connection.onClose = (reason) => this.peerLost(peer.index, reason);
        this.attachPeer(peer.index, connection);
      })().catch((error: unknown) => this.stopDirect(`cannot reach peer agent ${peer.index + 1} at ${peer.host}:${peer.port}: ${(error as Error).message}`));
    }
    this.maybeStartDirect();
  }

  attachPeer(index: number, connection: WireConnection): void {
    const direct = this.direct;
    if (direct === null && this.part !== null && !this.early.has(index)) {
      // the peer got its Peers frame first and joined (maybe sent its first Round too) before this agent
      // got its own: keep both until it does (refusing it here left this agent waiting for it for ever)
      this.early.set(index, { connection, frames: [] });
      return;
    }
    if (direct === null || direct.peers.has(index)) {
      connection.fail(`agent ${this.agent.options.name} did not expect peer ${index + 1}`);
      return;
    }
    direct.peers.set(index, connection);
    this.maybeStartDirect();
  }

  private maybeStartDirect(): void {
    const direct = this.direct;
    if (direct === null || direct.started || direct.peers.size < direct.expected) return;
    direct.started = true;
    this.setUpSpinner(direct);
    this.log(`run ${this.runId}: direct mode with ${direct.expected} peer(s)${direct.spinner !== null ? `, spinning up to ${SPIN_BUDGET_NS / 1000} us for their rounds` : ''}`);
    this.directStep();
  }

  private directStep(): void {
    const direct = this.direct;
    const part = this.part;
    if (direct === null || part === null || direct.stopped) return;
    if (direct.stopRequested || direct.startNs >= direct.endNs) {
      this.stopDirect(null);
      return;
    }
    const horizon = Math.min(direct.startNs + direct.windowNs, direct.endNs);
    const partition = part.partition;
    const sliceNs = Math.max(1, Math.ceil((horizon - Math.min(horizon, partition.nextEventTime())) / WINDOW_SLICES));
    this.runWindow(part, horizon, sliceNs, 0, (busyNs) => this.sendRound(horizon, busyNs));
  }

  private sendRound(horizon: number, busyNs: number): void {
    const direct = this.direct;
    const part = this.part;
    if (direct === null || part === null || direct.stopped) return;
    const partition = part.partition;
    const outbox = partition.takeOutbox();
    let sentMin = Infinity;
    let sent = 0;
    for (const events of outbox.values()) {
      sent += events.length;
      for (const e of events) if (e.time < sentMin) sentMin = e.time;
    }
    const next = partition.nextEventTime();
    const head = Buffer.allocUnsafe(24);
    head.writeDoubleBE(direct.round, 0);
    head.writeDoubleBE(next, 8);
    head.writeDoubleBE(sentMin, 16);
    for (const [index, connection] of direct.peers) sendWithEvents(connection, FrameType.Round, head, [[index, outbox.get(index) ?? []]], this.writer);
    const stats = direct.stats;
    stats.rounds++;
    stats.busyNs += busyNs;
    stats.eventsSent += sent;
    if (sent === 0) stats.nullRounds++;
    stats.reachedNs = horizon;
    direct.ownMin = Math.min(next, sentMin);
    direct.ownSent = true;
    const now = performance.now();
    if (now - direct.lastProgressMs >= direct.progressMs) {
      direct.lastProgressMs = now;
      this.connection.send(FrameType.Progress, jsonPayload({ reachedNs: horizon, events: partition.eventsHandled }));
    }
    if (direct.stopRequested) this.stopDirect(null);
    else {
      this.directMaybeAdvance();
      if (direct.ownSent) this.spinForRounds(direct);
    }
  }

  /** Direct mode has model hosts only, so nothing else needs this core while the agent waits. */
  private setUpSpinner(direct: DirectRun): void {
    if ((this.part?.liveNodes.size ?? 0) > 0) return;
    const connections = [...direct.peers.values(), this.connection];
    direct.spinner = spinnerFor(connections);
    direct.spinConnections = direct.spinner === null ? [] : connections;
  }

  /**
   * Waits for this round's peer Round messages by spinning on the sockets (spin.ts),
   * reading what arrives and handing it to its connection, in order. Whatever is not
   * in by then arrives through the event loop as before.
   */
  private spinForRounds(direct: DirectRun): void {
    if (direct.spinner === null) return;
    spinUntil(direct.spinner, direct.spinConnections, () => !(direct.ownSent && !direct.stopped && !direct.stopRequested));
  }

  /**
   * Star mode, model hosts only: after a Done, spin on the coordinator's socket for its
   * next Advance instead of sleeping (a sleeping agent pays a wake-up per window). The
   * Advance is handled inside the spin, its window runs and its Done goes out there
   * too, so this loop carries window after window; the call made by that Done returns
   * at once. After half a heartbeat period (at most YIELD_AFTER_MS) the loop leaves
   * the rest to the event loop, so heartbeats and timers run.
   */
  private spinForAdvance(): void {
    if (this.spinningForAdvance || this.scheduler !== null || (this.part?.liveNodes.size ?? 0) > 0) return;
    this.advanceSpinner ??= spinnerFor([this.connection]);
    if (this.advanceSpinner === null) return;
    this.spinningForAdvance = true;
    try {
      const untilNs = Number(process.hrtime.bigint()) + Math.min(YIELD_AFTER_MS, this.connection.options.heartbeatMs / 2) * 1e6;
      spinUntil(this.advanceSpinner, [this.connection], () => !this.awaitingAdvance || this.part === null, SPIN_BUDGET_NS, untilNs);
    } finally {
      this.spinningForAdvance = false;
    }
  }

  onPeerFrame(index: number, frame: Frame): void {
    const direct = this.direct;
    const part = this.part;
    const early = this.early.get(index);
    if (direct === null && early !== undefined) {
      early.frames.push(frame);
      return;
    }
    if (direct === null || part === null) throw new WireError('order', 'a peer frame outside a direct run');
    const mine = (destination: number) => {
      if (destination !== part.index) throw new WireError('malformed', `peer ${index + 1} sent events for partition ${destination} to partition ${part.index}`);
    };
    if (frame.type === FrameType.Events) {
      let list = direct.chunks.get(index);
      if (list === undefined) direct.chunks.set(index, (list = []));
      const chunk = list;
      readGroups(frame.payload, 0, (destination, events) => {
        mine(destination);
        for (const e of events) chunk.push(e);
      });
      return;
    }
    if (frame.type !== FrameType.Round || frame.payload.length < 24) throw new WireError('order', `peer ${index + 1} sent frame type ${frame.type} (expected Round)`);
    const round = frame.payload.readDoubleBE(0);
    if (!(round >= direct.round)) throw new WireError('order', `peer ${index + 1} sent round ${round}, this agent is at round ${direct.round}`);
    let entry = direct.received.get(round);
    if (entry === undefined) direct.received.set(round, (entry = { count: 0, min: Infinity, events: [] }));
    const target = entry;
    for (const e of direct.chunks.get(index) ?? []) target.events.push(e);
    direct.chunks.delete(index);
    readGroups(frame.payload, 24, (destination, events) => {
      mine(destination);
      for (const e of events) target.events.push(e);
    });
    target.count++;
    target.min = Math.min(target.min, frame.payload.readDoubleBE(8), frame.payload.readDoubleBE(16));
    this.directMaybeAdvance();
  }

  private directMaybeAdvance(): void {
    const direct = this.direct;
    const part = this.part;
    if (direct === null || part === null || direct.stopped || !direct.ownSent) return;
    const entry = direct.received.get(direct.round);
    if ((entry?.count ?? 0) < direct.expected) return;
    direct.received.delete(direct.round);
    if (entry !== undefined && entry.events.length > 0) part.partition.deliver(entry.events);
    direct.startNs = Math.min(direct.ownMin, entry?.min ?? Infinity);
    direct.round++;
    direct.ownSent = false;
    // the next round without growing the stack; the event loop runs now and then (heartbeats)
    const now = performance.now();
    if (now - direct.lastYieldMs > 50) {
      direct.lastYieldMs = now;
      setImmediate(() => this.directStep());
    } else queueMicrotask(() => this.directStep());
  }

  peerLost(index: number, reason: string): void {
    const direct = this.direct;
    if (direct === null && this.early.delete(index)) {
      // an early peer gone before this agent's Peers frame: the run stops as soon as it starts
      this.earlyLoss ??= `lost its link to peer agent ${index + 1}: ${reason}`;
      return;
    }
    if (direct === null || direct.closing || direct.stopped) return;
    this.log(`run ${this.runId}: lost peer ${index + 1}: ${reason}`);
    this.stopDirect(`lost its link to peer agent ${index + 1}: ${reason}`);
  }

  private stopDirect(problem: string | null): void {
    const direct = this.direct;
    if (direct === null || direct.stopped) return;
    direct.stopped = true;
    const { reachedNs, rounds, nullRounds, eventsSent, busyNs } = direct.stats;
    this.connection.send(FrameType.Stopped, jsonPayload({ reachedNs, rounds, nullRounds, eventsSent, busyNs, events: this.part?.partition.eventsHandled ?? 0, problem }));
  }

  private endDirect(): void {
    const direct = this.direct;
    if (direct === null) return;
    direct.closing = true;
    direct.stopped = true;
    for (const connection of direct.peers.values()) connection.close('the run is over');
    this.direct = null;
  }

  private dropEarlyPeers(): void {
    for (const { connection } of this.early.values()) connection.close('the run is over');
    this.early.clear();
    this.earlyLoss = null;
  }

  private running(frame: Frame): void {
    const part = this.part!;
    const index = part.index;
    const addInbound = (destination: number, events: SimEvent[]) => {
      if (destination !== index) throw new WireError('malformed', `events for partition ${destination} sent to partition ${index}`);
      for (const event of events) this.inbound.push(event);
    };
    switch (frame.type) {
      case FrameType.Events:
        readGroups(frame.payload, 0, addInbound);
        return;
      case FrameType.Advance: {
        this.awaitingAdvance = false;
        if (frame.payload.length < 16) throw new WireError('malformed', 'Advance frame without a horizon and a window start');
        const horizon = frame.payload.readDoubleBE(0);
        const start = frame.payload.readDoubleBE(8);
        readGroups(frame.payload, 16, addInbound);
        if (!(horizon >= part.partition.now)) throw new WireError('malformed', `horizon ${horizon} is before the partition's time ${part.partition.now}`);
        if (!(start <= horizon)) throw new WireError('malformed', `window start ${start} is after its horizon ${horizon}`);
        if (this.advancing) throw new WireError('order', 'Advance while the previous window still runs');
        const partition = part.partition;
        if (this.inbound.length > 0) {
          deliverToPart(part, this.inbound);
          this.inbound = [];
        }
        const scheduler = this.scheduler;
        if (scheduler !== null) {
          // the cells run through the window first; their frames become the partition's events
          scheduler.beforeWindow(Math.max(start, partition.now), horizon, partition);
        }
        const sliceNs = Math.max(1, Math.ceil((horizon - Math.min(horizon, partition.nextEventTime())) / WINDOW_SLICES));
        // with cells: let their output and exits (child-process events) in before answering
        this.runWindow(part, horizon, sliceNs, 0, scheduler === null ? undefined : (busyNs) => setImmediate(() => {
          if (this.part === part && !this.connection.closed) this.sendDone(busyNs, horizon);
        }));
        return;
      }
      case FrameType.Finish: {
        this.awaitingAdvance = false;
        if (frame.payload.length !== 8) throw new WireError('malformed', 'Finish frame without an end time');
        const endedAtNs = frame.payload.readDoubleBE(0);
        const scheduler = this.scheduler;
        this.scheduler = null;
        this.state = 'finished';
        const finish = (live: PartLive | null) => {
          const results = finishPart(part, endedAtNs, live);
          this.part = null;
          this.agent.release(this);
          this.connection.send(FrameType.Results, jsonPayload(results));
        };
        if (scheduler === null) return finish(null);
        // cells first (their commands' last lines and exits belong to the results), then the results
        this.liveWork = scheduler.teardown().then(
          () => {
            this.log(`run ${this.runId}: cells torn down`);
            if (!this.connection.closed) finish({ exitCodes: [...scheduler.exitCodes()], finishedAtNs: scheduler.finishedAtNs, stats: scheduler.stats });
          },
          (error: unknown) => {
            this.agent.release(this);
            if (!this.connection.closed) this.connection.fail(`agent ${this.agent.options.name} could not tear its cells down: ${(error as Error).message}`);
          },
        );
        this.agent.track(this.liveWork);
        return;
      }
      case FrameType.Abort:
        this.connection.close('the coordinator abandoned the run');
        return;
      case FrameType.Peers: {
        const message = parseJson<PeersMessage>(frame.payload, 'Peers');
        // fault injection for tests: a slow agent, whose peers join before it has this frame
        if (PEERS_DELAY_MS > 0) setTimeout(() => this.part !== null && this.startDirect(message), PEERS_DELAY_MS);
        else this.startDirect(message);
        return;
      }
      case FrameType.Stop:
        if (this.direct !== null) {
          this.direct.stopRequested = true;
          // not started yet, or waiting for peers: stop now; simulating: at the end of the window
          if ((!this.direct.started || this.direct.ownSent) && !this.direct.stopped) this.stopDirect(null);
        }
        return;
      default:
        throw new WireError('order', `frame type ${frame.type} is not expected during a run`);
    }
  }
}
