// The coordinator side of a distributed run: connects to every agent, proves the
// token (and checks the agent's proof), splits the plan (split.ts), ships each
// agent the whole plan with the assignment and its partition index, drives the
// windows (core/sync.ts, one round trip per agent and window), and merges the
// agents' results into one SimulationResult. Any agent failure (closed socket,
// heartbeat timeout, error frame) ends the run with a message naming the agent,
// its address and the virtual time; the surviving agents hand in their partial
// results and drop their partitions.
import { guestImage, scenarioPath } from '../live/guest.ts';
import { isKvmHost, isLiveHost, isQemuHost } from '../live/kinds.ts';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { canonicalJson, type Plan } from '../../dsl/plan.ts';
import type { SimEvent } from '../core/events.ts';
import { runWindows, type PartitionEndpoint, type SyncStats, type WindowResult } from '../core/sync.ts';
import { formatVirtual } from '../core/time.ts';
import { LiveHostNode } from '../live/host.ts';
import { newLiveStats } from '../live/scheduler.ts';
import { buildNetwork, UnsupportedPlanError } from '../model/network.ts';
import { LIVE_MAX_WINDOW_NS, type SimulationResult } from '../simulation.ts';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_TIMEOUT_MS, LIVE_NONE, LIVE_RUNNING, type HelloMessage, type PeersMessage, type PlanMessage, type ReadyMessage, type StoppedMessage } from './agent.ts';
import { mergeLive, mergeResults, type PartResults } from './part.ts';
import { lookahead, splitPlan, SplitError, type Split } from './split.ts';
import {
  EventWriter, FrameType, frameTypeName, jsonPayload, MAX_FRAME_BYTES, newNonce, NONCE_BYTES, parseJson, proof, proofMatches, PROOF_BYTES,
  readGroups, sendWithEvents, WireConnection, WireError, type Frame, type FrameTypeNumber,
} from './wire.ts';

export interface AgentAddress {
  host: string;
  port: number;
  /** the name the agent must report (agents file), or null for any */
  name: string | null;
}

/** The largest window of a distributed run even when no link bounds it (progress, heartbeats, Ctrl-C). */
export const MAX_DISTRIBUTED_WINDOW_NS = 1_000_000_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** Surviving agents must hand in partial results within this after a failure. */
export const PARTIAL_RESULTS_TIMEOUT_MS = 5000;

/** `host:port` or `[v6]:port`. */
export function parseAgentAddress(text: string, name: string | null = null): AgentAddress {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port >= 1 && port <= 65535)) throw new Error(`agent address '${text}' is not HOST:PORT (e.g. 10.0.0.2:7070)`);
  return { host: match[1] ?? match[2]!, port, name };
}

/** `a:7070,b:7070` */
export function parseAgentList(text: string): AgentAddress[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => parseAgentAddress(s));
}

/** An agents file: one agent a line, `HOST:PORT` or `NAME HOST:PORT`; `#` starts a comment. */
export function parseAgentsFile(text: string, file: string): AgentAddress[] {
  const out: AgentAddress[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const words = line.split(/\s+/);
    try {
      if (words.length === 1) out.push(parseAgentAddress(words[0]!));
      else if (words.length === 2) out.push(parseAgentAddress(words[1]!, words[0]!));
      else throw new Error('expected HOST:PORT or NAME HOST:PORT');
    } catch (error) {
      throw new Error(`${file}:${i + 1}: ${(error as Error).message}`);
    }
  });
  return out;
}

/** An agent failed: the message names it, its address and what happened. */
export class AgentError extends Error {
  constructor(
    readonly agent: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AgentCounters {
  /** Advance frames sent (windows this agent ran) */
  steps: number;
  /** Advance frames that carried no events: pure time-advance (null) messages */
  nullSteps: number;
  eventsSent: number;
  eventsReceived: number;
  /** wall ms between sending an Advance and reading its Done, summed */
  roundTripMs: number;
  /** of it, ns the agent spent simulating (reported in Done) */
  busyNs: number;
}

interface Waiter {
  expect: FrameTypeNumber;
  resolve: (frame: Frame) => void;
  reject: (error: Error) => void;
}

/** A connected, authenticated agent: the coordinator's endpoint of one remote partition. */
export class AgentLink implements PartitionEndpoint {
  index = -1;
  name = '?';
  capabilities: Record<string, unknown> = {};
  failure: AgentError | null = null;
  readonly counters: AgentCounters = { steps: 0, nullSteps: 0, eventsSent: 0, eventsReceived: 0, roundTripMs: 0, busyNs: 0 };
  /** virtual time the agent's partition reached (last completed window) */
  reachedNs = 0;
  /** its process cells: LIVE_NONE, LIVE_RUNNING, or the virtual time their commands ended (Done frames) */
  liveState: number = LIVE_NONE;
  /** agents running cells on one machine take turns (their cells would share its cores): the turn, shared */
  turn: { last: Promise<unknown> } | null = null;
  /** the window in progress, if any */
  windowEndNs: number | null = null;
  events = 0;
  private next = Infinity;
  private waiter: Waiter | null = null;
  private incoming = new Map<number, SimEvent[]>();
  private delivered: SimEvent[] = [];
  private lastOutbox = new Map<number, SimEvent[]>();
  private readonly writer = new EventWriter();
  private readonly head = Buffer.allocUnsafe(16);
  /** the step in flight: results are asked for only after it settled */
  private inflight: Promise<unknown> = Promise.resolve();
  private planned = false;
  /** closed by this side: not a failure */
  ending = false;
  connection!: WireConnection;

  private constructor(readonly address: AgentAddress) {}

  get label(): string {
    return `agent "${this.name}" (${this.address.host}:${this.address.port})`;
  }

  /** Connects and runs the handshake; rejects with an AgentError that says what to do. */
  static async connect(address: AgentAddress, token: Buffer, options: { connectTimeoutMs?: number; heartbeatMs?: number; timeoutMs?: number } = {}): Promise<AgentLink> {
    const link = new AgentLink(address);
    if (address.name !== null) link.name = address.name;
    const where = `${address.host}:${address.port}`;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const limit = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const s = connect({ host: address.host, port: address.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new AgentError(link.name, `agent at ${where} is unreachable: no connection within ${(limit / 1000).toFixed(1)} s (is \`livestack agent --listen ${where}\` running there, and the port open?)`));
      }, limit);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = error.code === 'ECONNREFUSED' ? 'refused the connection' : `could not be reached (${error.code ?? error.message})`;
        reject(new AgentError(link.name, `agent at ${where} ${why}: start it with \`livestack agent --listen ${where} --token-file FILE\``));
      });
    });
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    link.connection = new WireConnection(socket, { label: where, heartbeatMs, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    link.connection.onFrame = (frame) => link.onFrame(frame);
    link.connection.onClose = (reason) => link.closed(reason);
    // the handshake itself is bounded like a connect
    const handshake = setTimeout(() => link.connection.close(`no handshake within ${((options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000).toFixed(1)} s (is this a LiveStack agent?)`), options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    try {
      const hello = await link.expect(FrameType.Hello);
      if (hello.payload.length < NONCE_BYTES) throw new WireError('malformed', 'Hello frame too short');
      const agentNonce = hello.payload.subarray(0, NONCE_BYTES);
      const info = parseJson<HelloMessage>(hello.payload.subarray(NONCE_BYTES), 'Hello');
      const reported = String(info.name);
      if (address.name !== null && reported !== address.name) {
        link.connection.close('wrong agent');
        throw new AgentError(address.name, `the agent at ${where} is called "${reported}", the agents file says "${address.name}"`);
      }
      link.name = reported;
      const nonce = newNonce();
      link.connection.sendParts(FrameType.Auth, [nonce, proof(token, 'coordinator', agentNonce, nonce)]);
      const welcome = await link.expect(FrameType.Welcome);
      if (welcome.payload.length < PROOF_BYTES || !proofMatches(proof(token, 'agent', nonce, agentNonce), welcome.payload.subarray(0, PROOF_BYTES))) {
        link.connection.close('the agent failed authentication');
        throw new AgentError(link.name, `${link.label} could not prove it holds the token: use the same --token-file on the coordinator and every agent`);
      }
      link.capabilities = parseJson<Record<string, unknown>>(welcome.payload.subarray(PROOF_BYTES), 'Welcome');
    } catch (error) {
      // nothing of a failed handshake stays open
      link.ending = true;
      link.connection.close('handshake failed');
      throw error instanceof AgentError ? error : new AgentError(link.name, `${link.label}: handshake failed: ${(error as Error).message}`);
    } finally {
      clearTimeout(handshake);
    }
    link.connection.reader.maxFrameBytes = MAX_FRAME_BYTES;
    link.connection.startHeartbeats();
    return link;
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.Error) {
      const message = parseJson<{ message?: string }>(frame.payload, 'Error').message ?? 'no reason given';
      this.connection.close(`it reported: ${message}`);
      return;
    }
    if (frame.type === FrameType.Events) {
      readGroups(frame.payload, 0, (destination, events) => this.addIncoming(destination, events));
      return;
    }
    if (frame.type === FrameType.Progress) {
      const progress = parseJson<{ reachedNs: number; events: number }>(frame.payload, 'Progress');
      this.reachedNs = progress.reachedNs;
      this.events = progress.events;
      this.onProgressMessage?.(progress);
      return;
    }
    const waiter = this.waiter;
    if (waiter === null || waiter.expect !== frame.type) throw new WireError('order', `unexpected ${frameTypeName(frame.type)} frame${waiter === null ? '' : ` (waiting for ${frameTypeName(waiter.expect)})`}`);
    this.waiter = null;
    waiter.resolve(frame);
  }

  private addIncoming(destination: number, events: SimEvent[]): void {
    const list = this.incoming.get(destination);
    if (list === undefined) this.incoming.set(destination, events);
    else for (const e of events) list.push(e);
  }

  private closed(reason: string): void {
    if (this.ending) return;
    const closedByPeer = /^the connection was closed by the peer( \((\w+)\))?$/.exec(reason);
    const why = closedByPeer !== null
      ? `the connection closed${closedByPeer[2] === undefined ? '' : ` (${closedByPeer[2]})`}: the agent process died, was killed or dropped the run`
      : reason;
    if (!this.planned) {
      this.failure ??= new AgentError(this.name, `${this.label} ended the session before the run started: ${why}`);
      const waiter = this.waiter;
      this.waiter = null;
      waiter?.reject(this.failure);
      return;
    }
    const at = this.windowEndNs === null ? `virtual time ${formatVirtual(this.reachedNs)}` : `virtual time ${formatVirtual(this.reachedNs)} (in the window ending ${formatVirtual(this.windowEndNs)})`;
    this.failure ??= new AgentError(this.name, `${this.label} failed at ${at}: ${why}`);
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(this.failure);
  }

  private expect(type: FrameTypeNumber): Promise<Frame> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.connection.closed) return Promise.reject(new AgentError(this.name, `${this.label}: connection closed (${this.connection.closeReason})`));
    return new Promise((resolve, reject) => {
      this.waiter = { expect: type, resolve, reject };
    });
  }

  async sendPlan(message: PlanMessage): Promise<ReadyMessage> {
    this.index = message.index;
    this.planned = true;
    this.connection.send(FrameType.Plan, Buffer.from(JSON.stringify(message), 'utf8'));
    const ready = parseJson<ReadyMessage>((await this.expect(FrameType.Ready)).payload, 'Ready');
    this.next = ready.nextEventTime ?? Infinity;
    return ready;
  }

  step(horizon: number, inbound: SimEvent[], startNs: number): Promise<WindowResult> {
    const turn = this.turn;
    let promise: Promise<WindowResult>;
    if (turn === null) promise = this.runStep(horizon, inbound, startNs);
    else {
      // after the previous step of any agent sharing this machine's cores has answered
      promise = turn.last.catch(() => {}).then(() => this.runStep(horizon, inbound, startNs));
      turn.last = promise;
    }
    this.inflight = promise;
    return promise;
  }

  private async runStep(horizon: number, inbound: SimEvent[], startNs: number): Promise<WindowResult> {
    if (this.failure !== null) throw this.failure;
    const started = performance.now();
    this.windowEndNs = horizon;
    this.head.writeDoubleBE(horizon, 0);
    this.head.writeDoubleBE(startNs, 8);
    const reply = this.expect(FrameType.Done);
    sendWithEvents(this.connection, FrameType.Advance, this.head, [[this.index, inbound]], this.writer);
    const done = await reply;
    const payload = done.payload;
    if (payload.length < 32) throw new AgentError(this.name, `${this.label} sent a malformed Done frame`);
    this.next = payload.readDoubleBE(0);
    this.events = payload.readDoubleBE(8);
    this.liveState = payload.readDoubleBE(24);
    readGroups(payload, 32, (destination, events) => this.addIncoming(destination, events));
    const outbox = this.incoming;
    this.incoming = new Map();
    const c = this.counters;
    c.steps++;
    if (inbound.length === 0) c.nullSteps++;
    c.eventsSent += inbound.length;
    for (const events of outbox.values()) c.eventsReceived += events.length;
    c.busyNs += payload.readDoubleBE(16);
    c.roundTripMs += performance.now() - started;
    this.reachedNs = horizon;
    this.windowEndNs = null;
    return { outbox, nextEventTime: this.next };
  }

  /** direct mode: Progress frames (virtual time reached, events handled) */
  onProgressMessage: ((message: { reachedNs: number; events: number }) => void) | null = null;

  /** Direct mode: sends Peers and resolves with the agent's Stopped message. */
  async runDirect(message: PeersMessage): Promise<StoppedMessage> {
    const reply = this.expect(FrameType.Stopped);
    this.inflight = reply;
    this.connection.send(FrameType.Peers, jsonPayload(message));
    const stopped = parseJson<StoppedMessage>((await reply).payload, 'Stopped');
    this.reachedNs = stopped.reachedNs;
    this.events = stopped.events;
    const c = this.counters;
    c.steps = stopped.rounds;
    c.nullSteps = stopped.nullRounds;
    c.eventsReceived = stopped.eventsSent;
    c.busyNs = stopped.busyNs;
    return stopped;
  }

  /** Direct mode: asks the agent to stop at the end of its round. */
  stop(): void {
    if (this.connection.closed) return;
    this.connection.send(FrameType.Stop);
  }

  // the PartitionEndpoint calls of the call-per-operation loop, on top of step()
  deliver(events: readonly SimEvent[]): void {
    for (const e of events) this.delivered.push(e);
  }

  nextEventTime(): number {
    let next = this.next;
    for (const e of this.delivered) if (e.time < next) next = e.time;
    return next;
  }

  async advance(horizon: number): Promise<void> {
    const inbound = this.delivered;
    this.delivered = [];
    this.lastOutbox = (await this.step(horizon, inbound, Math.min(horizon, this.nextEventTime()))).outbox;
  }

  takeOutbox(): Map<number, SimEvent[]> {
    const out = this.lastOutbox;
    this.lastOutbox = new Map();
    return out;
  }

  async finish(endedAtNs: number): Promise<PartResults> {
    await this.inflight.catch(() => {});
    if (this.failure !== null) throw this.failure;
    const head = Buffer.allocUnsafe(8);
    head.writeDoubleBE(endedAtNs, 0);
    const reply = this.expect(FrameType.Results);
    this.connection.send(FrameType.Finish, head);
    return parseJson<PartResults>((await reply).payload, 'Results');
  }

  /** Ends the session: the agent drops its partition. */
  close(): void {
    if (this.connection === undefined || this.connection.closed) return;
    this.ending = true;
    this.connection.send(FrameType.Abort);
    this.connection.close('run over');
  }
}

export interface DistributedOptions {
  agents: readonly AgentAddress[];
  token: Buffer;
  endNs?: number;
  onProgress?: (timeNs: number, events: number) => boolean | void | Promise<boolean | void>;
  heartbeatMs?: number;
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** the agents exchange events among themselves (one hop per window) instead of through the coordinator */
  direct?: boolean;
  /** component id → agent index, instead of splitPlan (tests: random splits) */
  assignment?: Int32Array;
  /** notes for the user (which agent got what) */
  log?: (line: string) => void;
  /** the scenario's directory: kvm vm hosts' relative `image` paths are resolved from it (default: the working directory) */
  baseDir?: string;
}

export interface AgentReport {
  name: string;
  address: string;
  partition: number;
  components: number;
  cores: number | null;
  counters: AgentCounters;
  failed: boolean;
  /** what the agent reported in its Welcome (cores, versions, doctor report) */
  capabilities: Record<string, unknown>;
}

export interface DistributedResult extends SimulationResult {
  /** why the run ended early (an agent failed), or null */
  failure: string | null;
  agents: AgentReport[];
  split: Split;
  windowNs: number;
  sync: SyncStats;
  /** wall ms of the window loop (between Ready and Finish) */
  loopMs: number;
}

/** Runs `plan` on the given agents: same results, trace hash and logs as simulate(). */
export async function simulateDistributed(plan: Plan, options: DistributedOptions): Promise<DistributedResult> {
  const qemuHosts = plan.hosts.filter(isQemuHost);
  if (qemuHosts.length > 0) {
    throw new UnsupportedPlanError(`distributed runs take model, process and kvm vm hosts in this version; ${qemuHosts.length} host(s) are backend qemu vm hosts (${qemuHosts.slice(0, 3).map((h) => h.name).join(', ')}${qemuHosts.length > 3 ? ', …' : ''}): run this scenario without --agents`);
  }
  // hosts whose programs run on the agents: process cells and kvm guests
  const processHosts = plan.hosts.filter(isLiveHost);
  if (processHosts.length > 0 && options.direct === true) {
    throw new UnsupportedPlanError(`--direct takes model hosts only in this version; ${processHosts.length} host(s) are process or vm hosts (${processHosts.slice(0, 3).map((h) => h.name).join(', ')}${processHosts.length > 3 ? ', …' : ''}): run without --direct (the coordinator then drives the windows)`);
  }
  // kvm guests: built here, shipped with the plan part (an agent need not have the scenario's files)
  const images: Record<string, string> = {};
  for (const host of plan.hosts.filter(isKvmHost)) {
    if (host.vm?.image == null) throw new UnsupportedPlanError(`${host.source}: host ${host.name}: a backend kvm vm host needs an image "…" (a guest program, see scenarios/vm/guests/)`);
    images[host.name] = guestImage(host.name, scenarioPath(host.vm.image, host.source, options.baseDir ?? process.cwd()), host.source).toString('base64');
  }
  if (options.agents.length === 0) throw new AgentError('', 'no agents given (--agents HOST:PORT,…)');
  const addresses = options.agents.map((a) => `${a.host}:${a.port}`);
  const twice = addresses.find((a, i) => addresses.indexOf(a) !== i);
  if (twice !== undefined) throw new AgentError('', `agent ${twice} is given twice: an agent runs one partition at a time`);
  // process hosts' nodes only collect their results here; their cells run on the agents
  const network = buildNetwork(plan, { liveHost: (host, ip, ownerOf) => new LiveHostNode(host.index, host.name, host.index, ip, ownerOf) });
  const endNs = options.endNs ?? plan.durationNs ?? Number.MAX_SAFE_INTEGER;
  const connected = await Promise.allSettled(options.agents.map((a) => AgentLink.connect(a, options.token, options)));
  const links = connected.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const closeAll = () => {
    for (const link of links) link.close();
  };
  const refused = connected.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (refused.length > 0) {
    closeAll();
    throw new AgentError((refused[0] as AgentError).agent ?? '', refused.map((e) => e.message).join('\n'));
  }
  const names = links.map((l) => l.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) {
    closeAll();
    throw new AgentError(duplicate, `two agents are called "${duplicate}": give each a distinct --name`);
  }
  let split: Split;
  try {
    if (options.assignment === undefined) split = splitPlan(plan, names);
    else {
      const given = options.assignment;
      if (given.length !== network.nodes.length || given.some((p) => !(p >= 0 && p < links.length))) throw new SplitError(`the assignment must give each of the ${network.nodes.length} components an agent index 0…${links.length - 1}`);
      const weights = new Array<number>(links.length).fill(0);
      for (const p of given) weights[p]!++;
      split = { assignment: given, ...lookahead(plan, given), weights };
    }
  } catch (error) {
    closeAll();
    throw error;
  }
  // agents holding process hosts: each must be able to run cells, and those sharing a machine take turns
  const cellsOn = links.map((_, i) => processHosts.filter((h) => split.assignment[h.index] === i));
  const unable = links.findIndex((link, i) => cellsOn[i]!.length > 0 && link.capabilities['liveHosts'] !== true);
  if (unable >= 0) {
    closeAll();
    throw new AgentError(links[unable]!.name, `${links[unable]!.label} cannot run process hosts (${cellsOn[unable]!.slice(0, 3).map((h) => h.name).join(', ')}): its livestack doctor says process cells cannot run there; place them on another agent (place HOST on "NAME")`);
  }
  const noKvm = links.findIndex((link, i) => cellsOn[i]!.some(isKvmHost) && link.capabilities['kvmGuests'] !== true);
  if (noKvm >= 0) {
    closeAll();
    throw new AgentError(links[noKvm]!.name, `${links[noKvm]!.label} cannot run kvm vm hosts (${cellsOn[noKvm]!.filter(isKvmHost).slice(0, 3).map((h) => h.name).join(', ')}): its livestack doctor says kvm guests cannot run there; place them on another agent (place HOST on "NAME")`);
  }
  const turns = new Map<string, { last: Promise<unknown> }>();
  links.forEach((link, i) => {
    if (cellsOn[i]!.length === 0) return;
    link.liveState = LIVE_RUNNING;
    const machine = String(link.capabilities['host'] ?? link.address.host);
    const sharing = links.filter((other, j) => cellsOn[j]!.length > 0 && String(other.capabilities['host'] ?? other.address.host) === machine).length;
    if (sharing < 2) return;
    if (!turns.has(machine)) turns.set(machine, { last: Promise.resolve() });
    link.turn = turns.get(machine)!;
  });
  // live cells are frozen and checked (idle? exited?) at every window end, as in a local run
  // (and a frame between two cells must not arrive inside the window it was sent in: the plan's window)
  const windowNs = Math.max(1, Math.min(split.lookaheadNs, MAX_DISTRIBUTED_WINDOW_NS, processHosts.length > 0 ? Math.min(plan.syncWindowNs, LIVE_MAX_WINDOW_NS) : Infinity));
  const runId = randomBytes(6).toString('hex');
  const planText = canonicalJson(plan);
  const assignment = Array.from(split.assignment);
  let failure: AgentError | null = null;
  let stats: SyncStats = { windows: 0, messages: 0, endedAtNs: 0, stoppedEarly: true };
  let reached = 0;
  let loopMs = 0;
  // `until all exit` / `until HOST exits`: every agent with cells says its commands ended
  const finished = () => processHosts.length > 0 && plan.until.kind !== 'duration' && links.every((l) => l.liveState !== LIVE_RUNNING);
  try {
    const ready = await Promise.all(links.map((link, index) => link.sendPlan({ plan: planText, assignment, index, partitions: links.length, runId, heartbeatMs: link.connection.options.heartbeatMs, images: Object.fromEntries(Object.entries(images).filter(([name]) => cellsOn[index]!.some((h) => h.name === name))) })));
    ready.forEach((r, i) => options.log?.(`${links[i]!.label}: partition ${i + 1}/${links.length}, ${r.components} components`));
    const started = performance.now();
    if (options.direct === true) {
      const outcome = await runDirect(links, ready, { endNs, windowNs, ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) }, (t) => (reached = t));
      stats = outcome.stats;
      failure = outcome.failure;
    } else {
      stats = await runWindows(links, {
        endNs,
        windowNs,
        onWindow: (t) => {
          reached = t;
          if (finished()) return false;
          return options.onProgress?.(t, links.reduce((n, l) => n + l.events, 0));
        },
      });
      if (finished()) {
        stats.stoppedEarly = false;
        // the run ends when the last command did, not at the end of the window that noticed it
        stats.endedAtNs = Math.min(stats.endedAtNs, Math.max(0, ...links.map((l) => l.liveState)));
      }
    }
    loopMs = performance.now() - started;
    reached = stats.endedAtNs;
  } catch (error) {
    failure = firstFailure(links) ?? (error instanceof AgentError ? error : new AgentError('', (error as Error).message));
    stats.stoppedEarly = true;
    stats.endedAtNs = reached;
  }
  // results: from every agent still there (all of them, unless one failed)
  const parts: PartResults[] = [];
  const collected = await Promise.allSettled(
    links.map((link) => (link.failure !== null ? Promise.reject(link.failure) : withTimeout(link.finish(reached), PARTIAL_RESULTS_TIMEOUT_MS, `${link.label} did not hand in its results within ${PARTIAL_RESULTS_TIMEOUT_MS / 1000} s`))),
  );
  collected.forEach((r, i) => {
    if (r.status === 'fulfilled') parts.push(r.value);
    else if (failure === null) failure = links[i]!.failure ?? new AgentError(links[i]!.name, (r.reason as Error).message);
  });
  closeAll();
  const merged = mergeResults(network, parts);
  return {
    live: processHosts.length === 0 ? null : mergeLive(parts) ?? { exitCodes: new Map(processHosts.map((h) => [h.name, h.commands.map(() => null)])), finishedAtNs: null, stats: newLiveStats() },
    network,
    traceHash: merged.traceHash,
    events: merged.events,
    windows: stats.windows,
    aheadNs: 0,
    messages: stats.messages,
    endNs,
    reachedNs: stats.endedAtNs,
    stoppedEarly: stats.stoppedEarly || failure !== null,
    partitions: links.length,
    failure: failure === null ? null : (failure as AgentError).message,
    agents: links.map((l, i) => ({
      name: l.name, address: `${l.address.host}:${l.address.port}`, partition: i,
      components: split.assignment.reduce((n, p) => n + (p === i ? 1 : 0), 0),
      cores: typeof l.capabilities['cores'] === 'number' ? (l.capabilities['cores'] as number) : null,
      counters: l.counters, failed: l.failure !== null, capabilities: l.capabilities,
    })),
    split,
    windowNs,
    sync: stats,
    loopMs,
  };
}

/**
 * Direct mode: the agents exchange events and time-advance messages among themselves (agent.ts);
 * the coordinator only starts them, watches their progress (and their connections), and can stop them.
 */
async function runDirect(
  links: readonly AgentLink[], ready: readonly ReadyMessage[],
  options: { endNs: number; windowNs: number; onProgress?: DistributedOptions['onProgress'] },
  onReached: (timeNs: number) => void,
): Promise<{ stats: SyncStats; failure: AgentError | null }> {
  let stopping = false;
  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    for (const link of links) link.stop();
  };
  for (const link of links) {
    link.onProgressMessage = () => {
      const t = Math.min(...links.map((l) => l.reachedNs));
      onReached(t);
      const verdict = options.onProgress?.(t, links.reduce((n, l) => n + l.events, 0));
      void Promise.resolve(verdict).then((v) => {
        if (v === false) stopAll();
      });
    };
  }
  const peers = links.map((l, index) => ({ index, host: l.address.host, port: l.address.port }));
  const message: PeersMessage = { peers, windowNs: options.windowNs, endNs: options.endNs, nexts: ready.map((r) => r.nextEventTime), progressMs: 100 };
  let stopped: StoppedMessage[];
  try {
    // an agent that stopped with a problem (a lost peer) stops the others: they may be waiting for it
    stopped = await Promise.all(links.map((l) => l.runDirect(message).then((m) => {
      if (m.problem !== null) stopAll();
      return m;
    })));
  } catch (error) {
    // the survivors stop at the end of their round and then hand in their results
    stopAll();
    throw error;
  }
  const reachedNs = Math.min(...stopped.map((m) => m.reachedNs));
  const problem = stopped.findIndex((m) => m.problem !== null);
  const failure = problem < 0 ? null : new AgentError(links[problem]!.name, `${links[problem]!.label} ${stopped[problem]!.problem} (virtual time ${formatVirtual(stopped[problem]!.reachedNs)})`);
  const complete = !stopping && failure === null;
  return {
    stats: {
      windows: Math.max(0, ...stopped.map((m) => m.rounds)),
      messages: stopped.reduce((n, m) => n + m.eventsSent, 0),
      endedAtNs: complete ? options.endNs : reachedNs,
      stoppedEarly: !complete,
      steps: stopped.reduce((n, m) => n + m.rounds, 0),
      skipped: 0,
    },
    failure,
  };
}

function firstFailure(links: readonly AgentLink[]): AgentError | null {
  return links.find((l) => l.failure !== null)?.failure ?? null;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
