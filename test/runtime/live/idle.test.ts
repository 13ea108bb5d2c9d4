// Which blocked system calls count as "waiting for the cell itself" in idle
// detection (runtime/live/scheduler.ts untimedWait): lines as the kernel
// writes /proc/PID/task/TID/syscall (number, six arguments, sp, pc).
import test from 'ava';
import { untimedWait } from '../../../runtime/live/scheduler.ts';

const line = (nr: number, ...args: string[]) => [String(nr), ...args, ...Array(6 - args.length).fill('0x0'), '0x7ffd0000', '0x7f000000'].join(' ');

test('waits for a child, an untimed futex or a signal are idle', (t) => {
  t.true(untimedWait(line(61, '0xffffffff', '0x7ffc0000', '0x0', '0x0')), 'wait4');
  t.true(untimedWait(line(247, '0x1', '0x1234')), 'waitid');
  t.true(untimedWait(line(202, '0x55e7', '0x189', '0x0', '0x0')), 'FUTEX_WAIT_BITSET | PRIVATE | CLOCK_REALTIME, no timeout');
  t.true(untimedWait(line(202, '0x55e7', '0x80', '0x2', '0x0')), 'FUTEX_WAIT | PRIVATE, no timeout');
  t.true(untimedWait(line(128, '0x7f01', '0x7f02', '0x0', '0x8')), 'rt_sigtimedwait without a timeout (sigwait)');
});

test('timed waits and anything that may already be satisfied are not', (t) => {
  t.false(untimedWait(line(202, '0x55e7', '0x89', '0x0', '0x7f01a2c9cca0')), 'a futex wait with a timeout runs on real time');
  t.false(untimedWait(line(202, '0x55e7', '0x81', '0x1')), 'FUTEX_WAKE is no wait');
  t.false(untimedWait(line(128, '0x7f01', '0x7f02', '0x7f03', '0x8')), 'rt_sigtimedwait with a timeout');
  t.false(untimedWait(line(0, '0x3', '0x7ffc', '0x80')), 'read: a pipe may hold data while the cell is frozen');
  t.false(untimedWait(line(45, '0x5', '0x7ffc', '0x4000')), 'recvfrom');
  t.false(untimedWait(line(43, '0x3')), 'accept');
  t.false(untimedWait(line(426, '0x3', '0x0', '0x1', '0x1')), 'io_uring_enter');
  t.false(untimedWait('-1 0x7ffc2c7b9878 0x7f0ef2c294b6'), 'user space (frozen there)');
  t.false(untimedWait('running'), 'running');
});
