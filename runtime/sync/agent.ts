// `livestack agent`: serves one partition of a distributed run at a time over the
// wire protocol (wire.ts). Every connection first proves it knows the token;
// anything malformed, oversized, unauthenticated or of another version is logged
// and dropped, and the agent goes on serving the next connection. When the run
// ends or its coordinator goes away (closed socket, heartbeat timeout), the
// partition is dropped: a model partition holds nothing outside this process.
import { createServer, type Server, type Socket } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { planFromJson } from '../../dsl/plan.ts';
import type { SimEvent } from '../core/events.ts';
import { formatVirtual } from '../core/time.ts';
import { buildPart, finishPart, type BuiltPart } from './part.ts';
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
  /** what the agent reports in its welcome (doctor report, cores); computed once, on the first connection */
  capabilities?: () => Record<string, unknown>;
}

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

  /** Stops listening and drops every session. */
  async close(): Promise<void> {
    for (const session of this.sessions) session.connection.close('the agent is shutting down');
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
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

  /** @internal */
  release(session: Session): void {
    if (this.running === session) this.running = null;
  }
}

type State = 'hello' | 'authenticated' | 'running' | 'finished';

class Session {
  readonly connection: WireConnection;
  private state: State = 'hello';
  private readonly nonce = newNonce();
  private readonly peer: string;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private part: BuiltPart | null = null;
  private runId = '';
  private inbound: SimEvent[] = [];
  private readonly writer = new EventWriter();
  /** a window is running in slices (between two of them, the event loop runs) */
  private advancing = false;

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
    // nothing of the run survives the session: the partition, its network and queues go with it
    this.part = null;
    this.inbound = [];
    this.agent.release(this);
  }

  private onFrame(frame: Frame): void {
    switch (this.state) {
      case 'hello':
        if (frame.type !== FrameType.Auth) throw new WireError('order', `expected an Auth frame first, got frame type ${frame.type}`);
        this.authenticate(frame.payload);
        return;
      case 'authenticated':
        if (frame.type === FrameType.Abort) return this.connection.close('the coordinator ended the session');
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
    const next = this.part.partition.nextEventTime();
    const ready: ReadyMessage = { components: this.part.own.length, nextEventTime: Number.isFinite(next) ? next : null };
    this.connection.send(FrameType.Ready, jsonPayload(ready));
    this.log(`run ${this.runId} from ${this.peer}: partition ${message.index + 1}/${message.partitions}, ${this.part.own.length} components`);
  }

  /**
   * Runs the window [now, horizon) in virtual slices (safe: every slice ends at or before the
   * horizon, and whatever the partition sends lands at or after it). After YIELD_AFTER_MS of wall
   * time it lets the event loop run (heartbeats go out, an Abort is seen) and goes on, so a long
   * window does not look like a hung agent. Answers with Done when the window is through.
   */
  private runWindow(part: BuiltPart, horizon: number, sliceNs: number, busyNsBefore: number): void {
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
            this.runWindow(part, horizon, sliceNs, busyNs);
          } catch (error) {
            this.connection.fail(`agent ${this.agent.options.name}: ${(error as Error).message}`);
          }
        });
        return;
      }
    }
    const outbox = partition.takeOutbox();
    const head = Buffer.allocUnsafe(24);
    head.writeDoubleBE(partition.nextEventTime(), 0);
    head.writeDoubleBE(partition.eventsHandled, 8);
    head.writeDoubleBE(busyNsBefore + Number(process.hrtime.bigint() - started), 16);
    sendWithEvents(this.connection, FrameType.Done, head, outbox, this.writer);
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
        if (frame.payload.length < 8) throw new WireError('malformed', 'Advance frame without a horizon');
        const horizon = frame.payload.readDoubleBE(0);
        readGroups(frame.payload, 8, addInbound);
        if (!(horizon >= part.partition.now)) throw new WireError('malformed', `horizon ${horizon} is before the partition's time ${part.partition.now}`);
        if (this.advancing) throw new WireError('order', 'Advance while the previous window still runs');
        const partition = part.partition;
        if (this.inbound.length > 0) {
          partition.deliver(this.inbound);
          this.inbound = [];
        }
        const sliceNs = Math.max(1, Math.ceil((horizon - Math.min(horizon, partition.nextEventTime())) / WINDOW_SLICES));
        this.runWindow(part, horizon, sliceNs, 0);
        return;
      }
      case FrameType.Finish: {
        if (frame.payload.length !== 8) throw new WireError('malformed', 'Finish frame without an end time');
        const results = finishPart(part, frame.payload.readDoubleBE(0));
        this.state = 'finished';
        this.part = null;
        this.agent.release(this);
        this.connection.send(FrameType.Results, jsonPayload(results));
        return;
      }
      case FrameType.Abort:
        this.connection.close('the coordinator abandoned the run');
        return;
      default:
        throw new WireError('order', `frame type ${frame.type} is not expected during a run`);
    }
  }
}
