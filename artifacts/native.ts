// The OLTP experiment without LiveStack, on this machine, now: MariaDB in one
// network namespace, sysbench in another, joined by a delay element in a third
// (bench/delay.c: this kernel has no netem). A baseline measured in the same run
// as the simulated point, so this machine's speed of the moment moves both.
//
// Layout: the delay element busy-polls on the last core (as LiveStack's
// controller does); the database and sysbench share the first (as LiveStack's
// cells do). The element's own forwarding cost (two more veth hops and a packet
// socket each way, ~40 us one way here) is measured first with no delay and
// taken off the delay it is given, so a frame's one-way time is the link's
// latency plus what a plain veth costs.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeOltpOptions {
  /** one-way latency between the client and the database */
  latencyNs: number;
  tables: number;
  tableSize: number;
  threads: number;
  timeS: number;
  /** TCP congestion control of both namespaces' connections (a route metric); default: the machine's */
  congestionControl?: string;
  /** write the run phase's frames as seen by the database (d0.pcap) and the client (c0.pcap) here (dumpcap) */
  captureDir?: string;
}

export interface NativeOltpResult {
  tps: number | null;
  qps: number | null;
  p95Ms: number | null;
  /** what the element's own path adds one way (taken off its delay) */
  elementNs: number;
  /** the element's report: frames forwarded and the latest a frame left after its due time */
  element: string;
  wallS: number;
}

const DB_ADDRESS = '198.18.0.1';
const CLIENT_ADDRESS = '198.18.0.2';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `command` inside namespace `ns`, pinned to `core`: the argument list for ip(8) */
function inNs(ns: string, core: number, command: string[]): string[] {
  return ['netns', 'exec', ns, 'taskset', '-c', String(core), ...command];
}

/** The smallest of 40 ping round trips (ms) from the client namespace to `address`: the path's own cost. Their mean also carries this machine's
 *  wake-up noise, and once read higher on the direct path than through the element (its cost then 0). */
function pingMs(ns: string, address: string): number {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '40', '-i', '0.01', '-q', address], { encoding: 'utf8' });
  const m = /= ([\d.]+)\/[\d.]+\//.exec(out);
  if (m === null) throw new Error(`no RTT in ping's output: ${out}`);
  return Number(m[1]);
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > until) throw new Error(`native OLTP: ${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function stop(child: ChildProcess | null): Promise<void> {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Runs sysbench oltp_read_write natively across a delay element; cleans every namespace and process up. */
export async function runNativeOltp(o: NativeOltpOptions): Promise<NativeOltpResult> {
  const work = mkdtempSync(join(tmpdir(), 'livestack-native-'));
  const tag = `lsn-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const [nsC, nsD, nsM] = [`${tag}-c`, `${tag}-d`, `${tag}-m`];
  const programsCore = 0;
  const elementCore = Math.max(0, availableParallelism() - 1);
  let element: { child: ChildProcess; output: () => string } | null = null;
  let db: ChildProcess | null = null;
  const started = performance.now();
  try {
    const delayBin = join(work, 'delay');
    execFileSync('cc', ['-O2', '-Wall', '-o', delayBin, join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'delay.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (const ns of [nsC, nsD, nsM]) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', 'c0', 'netns', nsC, 'type', 'veth', 'peer', 'name', 'c1', 'netns', nsM);
    ip('link', 'add', 'd0', 'netns', nsD, 'type', 'veth', 'peer', 'name', 'd1', 'netns', nsM);
    // a plain veth between the two, for the element's calibration only
    ip('link', 'add', 'x0', 'netns', nsC, 'type', 'veth', 'peer', 'name', 'x1', 'netns', nsD);
    ip('-n', nsC, 'addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', 'c0');
    ip('-n', nsD, 'addr', 'add', `${DB_ADDRESS}/24`, 'dev', 'd0');
    ip('-n', nsC, 'addr', 'add', '198.19.0.2/24', 'dev', 'x0');
    ip('-n', nsD, 'addr', 'add', '198.19.0.1/24', 'dev', 'x1');
    for (const [ns, dev] of [[nsC, 'c0'], [nsD, 'd0'], [nsM, 'c1'], [nsM, 'd1'], [nsC, 'x0'], [nsD, 'x1']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
    if (o.congestionControl !== undefined) {
      for (const [ns, dev, src] of [[nsC, 'c0', CLIENT_ADDRESS], [nsD, 'd0', DB_ADDRESS]] as const) ip('-n', ns, 'route', 'replace', '198.18.0.0/24', 'dev', dev, 'proto', 'kernel', 'scope', 'link', 'src', src, 'congctl', o.congestionControl);
    }
    const startElement = async (delayNs: number): Promise<{ child: ChildProcess; output: () => string }> => {
      const child = spawn('ip', inNs(nsM, elementCore, [delayBin, 'c1', 'd1', String(Math.max(0, Math.round(delayNs)))]), { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      element = { child, output: () => out };
      await waitFor(() => out.includes('delay:') || child.exitCode !== null, 'the delay element starting');
      if (child.exitCode !== null) throw new Error(`the delay element exited (${child.exitCode})`);
      return element;
    };
    // calibration: what the element's path adds, one way
    await startElement(0);
    pingMs(nsC, DB_ADDRESS); // ARP and warm-up
    const through = pingMs(nsC, DB_ADDRESS);
    const direct = pingMs(nsC, '198.19.0.1');
    await stop(element!.child);
    const elementNs = Math.max(0, ((through - direct) / 2) * 1e6);
    // its own path must be a small part of the latency, or the baseline measures the element
    if (elementNs > o.latencyNs / 2) throw new Error(`native OLTP: the delay element's own path took ${(elementNs / 1e3).toFixed(0)} us one way, more than half the ${o.latencyNs / 1e3} us asked: this machine is too busy for a native baseline now`);
    ip('-n', nsC, 'link', 'del', 'x0');
    const running = await startElement(o.latencyNs - elementNs);
    // the database, as in scenarios/paper/oltp.scn
    writeFileSync(join(work, 'init.sql'), "CREATE DATABASE IF NOT EXISTS sbtest;\nCREATE USER IF NOT EXISTS sb@'%' IDENTIFIED BY 'sb';\nGRANT ALL ON *.* TO sb@'%';\n");
    const data = join(work, 'data');
    execFileSync('ip', inNs(nsD, programsCore, ['mariadb-install-db', '--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-use-native-aio=0']), { stdio: 'ignore' });
    db = spawn('ip', inNs(nsD, programsCore, ['mariadbd', '--no-defaults', `--datadir=${data}`, '--user=root', `--socket=${join(work, 'sock')}`, '--port=3306', '--bind-address=0.0.0.0',
      '--skip-name-resolve', '--max-connections=200', '--innodb-buffer-pool-size=256M', '--innodb-log-file-size=64M', '--innodb-use-native-aio=0', `--init-file=${join(work, 'init.sql')}`, `--log-error=${join(work, 'error.log')}`]), { stdio: 'ignore' });
    const ready = () => {
      try {
        execFileSync('ip', ['netns', 'exec', nsC, 'mariadb', '-h', DB_ADDRESS, '-u', 'sb', '-psb', '--connect-timeout=2', '-e', 'select 1'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(ready, 'mariadbd accepting connections', 60_000);
    const sb = ['sysbench', 'oltp_read_write', '--db-driver=mysql', `--mysql-host=${DB_ADDRESS}`, '--mysql-user=sb', '--mysql-password=sb', `--tables=${o.tables}`, `--table-size=${o.tableSize}`];
    const run = (args: string[]) => execFileSync('ip', inNs(nsC, programsCore, [...sb, ...args]), { encoding: 'utf8', maxBuffer: 16 << 20 });
    run(['prepare']);
    // headers only (128 bytes a frame); dumpcap takes ~1 s to start capturing
    const dumps = o.captureDir === undefined ? [] : ([[nsD, 'd0'], [nsC, 'c0']] as const).map(([ns, dev]) =>
      spawn('ip', ['netns', 'exec', ns, 'dumpcap', '-q', '-i', dev, '-s', '128', '-w', join(o.captureDir!, `${dev}.pcap`)], { stdio: 'ignore' }));
    if (dumps.length > 0) await new Promise((resolve) => setTimeout(resolve, 1500));
    const out = run([`--threads=${o.threads}`, `--time=${o.timeS}`, '--percentile=95', 'run']);
    const num = (re: RegExp) => {
      const m = re.exec(out);
      return m === null ? null : Number(m[1]);
    };
    for (const d of dumps) await stop(d);
    await stop(running.child);
    const report = running.output().trim().split('\n').pop() ?? '';
    return {
      tps: num(/transactions: +\d+ +\(([\d.]+) per sec/),
      qps: num(/queries: +\d+ +\(([\d.]+) per sec/),
      p95Ms: num(/95th percentile: +([\d.]+)/),
      elementNs,
      element: report,
      wallS: (performance.now() - started) / 1000,
    };
  } finally {
    await stop(db);
    if (element !== null) await stop(element.child);
    for (const ns of [nsC, nsD, nsM]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // not created
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
}

// `npx tsx artifacts/native.ts [LATENCY_US] [TIME_S] [CONGESTION_CONTROL] [CAPTURE_DIR]`: one native point
// (10 tables × 10,000 rows, 4 threads); '' for the machine's congestion control
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const latencyUs = Number(process.argv[2] ?? 1000);
  const result = await runNativeOltp({ latencyNs: latencyUs * 1000, tables: 10, tableSize: 10_000, threads: 4, timeS: Number(process.argv[3] ?? 30),
    congestionControl: process.argv[4] || undefined, captureDir: process.argv[5] || undefined });
  console.log(JSON.stringify(result, null, 2));
}
