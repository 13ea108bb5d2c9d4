import { readdirSync } from 'node:fs';
import test from 'ava';
import { probeCgroups } from '../../ffi/cgroup.ts';
import { fakeTree } from './helpers.ts';

// Debian/systemd style: cpu and cpuacct share one mount, named by both,
// with a symlink per controller.
const v1Tree = {
  'cpu,cpuacct/cgroup.procs': '',
  cpu: { link: 'cpu,cpuacct' },
  cpuacct: { link: 'cpu,cpuacct' },
  'cpuset/cgroup.procs': '',
  'memory/cgroup.procs': '',
  'freezer/cgroup.procs': '',
  'pids/cgroup.procs': '',
  'systemd/cgroup.procs': '',
  'not-a-cgroup/readme': 'plain directory',
};

test('fake v1 tree: controllers, symlinked hierarchies counted once, v1 freezer', (t) => {
  const root = fakeTree(t, v1Tree);
  const probe = probeCgroups(root);
  t.is(probe.error, null);
  t.true(probe.byStructure);
  t.is(probe.v1.hierarchies, 6);
  t.deepEqual(probe.v1.names, ['cpu', 'cpuacct', 'cpuset', 'freezer', 'memory', 'pids', 'systemd']);
  t.deepEqual(probe.v1.controllers, { cpu: true, cpuacct: true, cpuset: true, memory: true, freezer: true, pids: true });
  t.deepEqual(probe.freezer, { v1: true, v2: false });
  t.is(probe.v2, null);
});

test('fake v1 tree without freezer or pids', (t) => {
  const root = fakeTree(t, { 'cpu/cgroup.procs': '', 'memory/cgroup.procs': '' });
  const probe = probeCgroups(root);
  t.is(probe.v1.hierarchies, 2);
  t.false(probe.v1.controllers.freezer);
  t.false(probe.v1.controllers.pids);
  t.deepEqual(probe.freezer, { v1: false, v2: false });
});

test('fake unified (v2 at root) tree with a child that has cgroup.freeze', (t) => {
  const root = fakeTree(t, {
    'cgroup.controllers': 'cpuset cpu io memory pids\n',
    'cgroup.procs': '',
    'system.slice/cgroup.freeze': '0\n',
  });
  const probe = probeCgroups(root);
  t.is(probe.error, null);
  t.deepEqual(probe.v2, { path: root, atRoot: true, controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] });
  t.deepEqual(probe.freezer, { v1: false, v2: true });
  t.is(probe.v1.hierarchies, 0);
});

test('fake v2 tree with no child: no freezer claimed and nothing created in it', (t) => {
  const root = fakeTree(t, { 'cgroup.controllers': 'memory\n' });
  const probe = probeCgroups(root);
  t.false(probe.freezer.v2);
  t.deepEqual(readdirSync(root), ['cgroup.controllers']);
});

test('fake hybrid tree: v1 hierarchies plus cgroup2 at unified/', (t) => {
  const root = fakeTree(t, {
    ...v1Tree,
    'unified/cgroup.controllers': 'hugetlb\n',
    'unified/init.scope/cgroup.freeze': '0\n',
  });
  const probe = probeCgroups(root);
  t.is(probe.v1.hierarchies, 6);
  t.deepEqual(probe.v2, { path: `${root}/unified`, atRoot: false, controllers: ['hugetlb'] });
  t.deepEqual(probe.freezer, { v1: true, v2: true });
});

test('a missing root is reported as ENOENT, not thrown', (t) => {
  const probe = probeCgroups('/nonexistent/livestack/cgroup');
  t.is(probe.error?.code, 'ENOENT');
  t.is(probe.v1.hierarchies, 0);
  t.is(probe.v2, null);
});

test('this machine: real mounts (by magic) with a v1 freezer, and no probe cgroup left behind', (t) => {
  const probe = probeCgroups();
  t.is(probe.error, null);
  t.false(probe.byStructure);
  t.true(probe.freezer.v1);
  t.true(probe.v1.controllers.freezer);
  if (probe.v2) {
    t.false(readdirSync(probe.v2.path).some((name) => name.startsWith('livestack-probe-')));
  }
});
