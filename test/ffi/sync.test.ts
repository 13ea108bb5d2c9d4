// ffi/sync.ts (ffi/c/sync.c): spin-waiting on real loopback TCP sockets, as the
// agents of a direct-mode run do while waiting for their peers' Round messages.
import test from 'ava';
import { createServer, connect, type Socket } from 'node:net';
import { SocketSpinner, socketFd, spinAvailable } from '../../ffi/sync.ts';

async function pair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', () => resolve()));
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect({ host: '127.0.0.1', port: (listener.address() as { port: number }).port });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const server = await accepted;
  return { client, server, close: () => { client.destroy(); server.destroy(); listener.close(); } };
}

test('the library has the spinner', (t) => {
  t.true(spinAvailable());
});

test('spinning reads what the peer wrote, from the right socket, bytes in order', async (t) => {
  const a = await pair();
  const b = await pair();
  try {
    const spinner = new SocketSpinner(Buffer.alloc(4096));
    spinner.setFds([socketFd(a.server)!, socketFd(b.server)!]);
    // nothing there: the budget runs out and nothing is read
    const start = process.hrtime.bigint();
    t.deepEqual(spinner.wait(2_000_000), { kind: 'timeout' });
    t.true(Number(process.hrtime.bigint() - start) >= 2_000_000, 'it waited its budget');
    b.client.write(Buffer.from('second socket'));
    let got = spinner.wait(2e9);
    t.is(got.kind, 'data');
    if (got.kind === 'data') {
      t.is(got.index, 1);
      t.is(got.bytes.toString(), 'second socket');
    }
    a.client.write(Buffer.from('first'));
    got = spinner.wait(2e9);
    t.true(got.kind === 'data' && got.index === 0 && got.bytes.toString() === 'first');
    // Node's own reading sees nothing of what the spinner took
    let seen = '';
    a.server.on('data', (c: Buffer) => (seen += c.toString()));
    a.client.write(Buffer.from('later'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.is(seen, 'later');
  } finally {
    a.close();
    b.close();
  }
});

test('a closed peer is reported and its end of stream left for the event loop', async (t) => {
  const a = await pair();
  try {
    const spinner = new SocketSpinner(Buffer.alloc(64));
    spinner.setFds([socketFd(a.server)!]);
    const ended = new Promise<void>((resolve) => a.server.once('end', () => resolve()));
    await new Promise<void>((resolve) => a.client.end(() => resolve())); // the FIN is sent by the event loop
    t.deepEqual(spinner.wait(2e9), { kind: 'closed', index: 0 });
    await ended; // Node still sees the end of stream
    t.pass();
  } finally {
    a.close();
  }
});

test('bad arguments are refused', (t) => {
  const spinner = new SocketSpinner(Buffer.alloc(64));
  t.throws(() => spinner.setFds([]), { instanceOf: RangeError });
  t.throws(() => spinner.setFds(Array.from({ length: 65 }, () => 0)), { instanceOf: RangeError });
  spinner.setFds([1_000_000]); // not an fd: poll reports POLLNVAL, no read
  t.deepEqual(spinner.wait(1e6), { kind: 'closed', index: 0 });
});
