// Which plan hosts run as process cells. A leaf module (plan types only), so
// that runtime/model, runtime/simulation and runtime/sync can ask without
// loading the cell machinery.
//
// A `kind vm` host with `backend qemu` is a process cell whose one program is
// QEMU (TCG) booting the host's kernel (runtime/live/qemu.ts).
import type { PlanHost } from '../../dsl/plan.ts';

/** `kind vm` + `backend qemu`: a full-system guest run by QEMU inside a process cell. */
export function isQemuHost(host: Pick<PlanHost, 'kind' | 'vm'>): boolean {
  return host.kind === 'vm' && host.vm?.backend === 'qemu';
}

/** Hosts that run in a process cell: `kind process`, and `backend qemu` vm hosts. */
export function isProcessCell(host: Pick<PlanHost, 'kind' | 'vm'>): boolean {
  return host.kind === 'process' || isQemuHost(host);
}

/** `kind vm` hosts the KVM backend runs (the micro-VMM, runtime/live/vm.ts): every vm host but backend qemu. */
export function isKvmHost(host: Pick<PlanHost, 'kind' | 'vm'>): boolean {
  return host.kind === 'vm' && host.vm?.backend !== 'qemu';
}

/** Hosts with a node of their own in the live scheduler: process cells and KVM guests. */
export function isLiveHost(host: Pick<PlanHost, 'kind' | 'vm'>): boolean {
  return isProcessCell(host) || isKvmHost(host);
}
