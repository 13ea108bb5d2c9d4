// Agents as separate OS processes on loopback, for the distributed-run tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

export const TOKEN = 'test-token-0123456789abcdef';

/** A token file (mode 0600) holding `token`. */
export function tokenFile(token = TOKEN): string {
  const dir = mkdtempSync(join(tmpdir(), 'livestack-token-'));
  const file = join(dir, 'token');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return file;
}

export interface AgentProcess {
  name: string;
  port: number;
  child: ChildProcess;
  /** what the agent logged on stderr so far */
  log(): string;
  /** resolves when the agent's stderr matches `pattern` (or rejects after `ms`) */
  waitForLog(pattern: RegExp, ms?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `livestack agent` through the bin script and waits for its "listening on" line. */
export async function startAgent(name: string, file: string, extra: readonly string[] = []): Promise<AgentProcess> {
  const child = spawn(process.execPath, ['bin/livestack.js', 'agent', '--listen', '127.0.0.1:0', '--token-file', file, '--name', name, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: Array<() => void> = [];
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of watchers) w();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${name} did not start within 60 s; stderr:\n${stderr}`)), 60_000);
    const check = () => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${name} exited with ${code} before listening; stderr:\n${stderr}`));
    });
  });
  return {
    name,
    port,
    child,
    log: () => stderr,
    waitForLog(pattern, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`agent ${name} never logged ${pattern}; its log:\n${stderr}`)), ms);
        const check = () => {
          if (pattern.test(stderr)) {
            clearTimeout(timer);
            resolve();
          }
        };
        watchers.push(check);
        check();
      });
    },
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, signal);
    },
  };
}

/** Starts agents in parallel; every one is killed (by PID) when the test file ends. */
export async function startAgents(t: ExecutionContext | null, names: readonly string[], file: string, extra: readonly string[] = []): Promise<AgentProcess[]> {
  const started = await Promise.allSettled(names.map((n) => startAgent(n, file, extra)));
  const agents = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (t !== null) t.teardown(() => killAll(agents));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    killAll(agents);
    throw (failed as PromiseRejectedResult).reason;
  }
  return agents;
}

export function killAll(agents: readonly AgentProcess[]): void {
  for (const a of agents) a.kill('SIGKILL');
}

export function addressOf(agent: AgentProcess) {
  return { host: '127.0.0.1', port: agent.port, name: null };
}
