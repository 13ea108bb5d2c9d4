/*
 * vm.c — a VM: /dev/kvm, guest memory, its vCPUs, and the ls_vm__ API the
 * runtime calls (runtime/live/vm.ts through ffi/vm.ts).
 *
 * Guest memory is a memfd mapped shared into this process and registered as
 * KVM memory slot 0 at guest physical 0: the VMM reads and writes guest
 * buffers directly (hypercalls pass guest addresses), and a crash dump could
 * map the same fd. Every resource has its release in vm__destroy_bare, which
 * tolerates a half-built VM, so error paths unwind through it.
 */
#define _GNU_SOURCE
#include "vmm.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MPOL_BIND
#define MPOL_BIND 2
#endif

void *vm__guest(struct vmm_vm *vm, uint64_t gpa, uint64_t length)
{
	if (gpa > vm->mem_size || length > vm->mem_size - gpa)
		return NULL;
	return vm->mem + gpa;
}

static int vm__memory(struct vmm_vm *vm, uint64_t bytes, int numa_node)
{
	struct kvm_userspace_memory_region region;

	vm->mem_fd = memfd_create("livestack-guest", MFD_CLOEXEC);
	if (vm->mem_fd < 0)
		return -errno;
	if (ftruncate(vm->mem_fd, (off_t)bytes) < 0)
		return -errno;
	vm->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return -errno;
	}
	vm->mem_size = bytes;
	if (numa_node >= 0 && numa_node < 64) {
		unsigned long mask = 1ul << numa_node;

		/* before the first touch, so pages are allocated there */
		if (syscall(SYS_mbind, vm->mem, bytes, MPOL_BIND, &mask, 64ul, 0u) < 0)
			return -errno;
	}
	memset(&region, 0, sizeof region);
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = bytes;
	region.userspace_addr = (uint64_t)(uintptr_t)vm->mem;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	return 0;
}

static int vm__create_vcpu(struct vmm_vm *vm, struct vmm_vcpu *vcpu, int kvm_fd, int index)
{
	long size;
	int khz;

	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0)
		return -errno;
	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (long)sizeof(struct kvm_run))
		return size < 0 ? -errno : -EPROTO;
	vcpu->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return -errno;
	}
	vcpu->run_size = (size_t)size;
	vcpu->state = index == 0 ? VMM_CPU_RUNNING : VMM_CPU_PARKED;
	vcpu->wait_until_ns = INT64_MAX;
	if (index == 0) {
		khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
		if (khz <= 0)
			return khz < 0 ? -errno : -EPROTO;
		vm->tsc_khz = (uint64_t)khz;
	}
	return cpu__setup(vcpu);
}

void vm__destroy_bare(struct vmm_vm *vm)
{
	if (vm == NULL)
		return;
	for (int i = 0; i < (int)LS_GUEST_VCPUS_MAX; i++) {
		struct vmm_vcpu *vcpu = &vm->vcpus[i];

		if (vcpu->run != NULL)
			munmap(vcpu->run, vcpu->run_size);
		if (vcpu->fd >= 0)
			close(vcpu->fd);
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->mem != NULL)
		munmap(vm->mem, vm->mem_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	free(vm->rx);
	free(vm->tx);
	free(vm->tx_bytes);
	free(vm->console);
	free(vm->arg);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->io_lock);
	pthread_cond_destroy(&vm->cond);
	free(vm);
}

static int vm__create_numa(struct vmm_vm **out, uint64_t memory_bytes, int numa_node, int vcpus)
{
	struct vmm_vm *vm;
	int kvm_fd, rc;

	*out = NULL;
	if (memory_bytes < LS_GUEST_MEMORY_MIN || memory_bytes > LS_GUEST_MEMORY_MAX || memory_bytes % (2ull << 20) != 0 ||
	    vcpus < 1 || vcpus > (int)LS_GUEST_VCPUS_MAX || (uint64_t)vcpus * LS_GUEST_STACK_BYTES + (2ull << 20) > memory_bytes)
		return -EINVAL;
	vm = calloc(1, sizeof *vm);
	if (vm == NULL)
		return -ENOMEM;
	vm->vm_fd = vm->mem_fd = -1;
	for (int i = 0; i < (int)LS_GUEST_VCPUS_MAX; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->io_lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		close(kvm_fd);
		rc = -EPROTO;
		goto fail;
	}
	vm->vm_fd = util__kvm_create_vm(kvm_fd);
	if (vm->vm_fd < 0) {
		rc = vm->vm_fd;
		close(kvm_fd);
		goto fail;
	}
	rc = vm__memory(vm, memory_bytes, numa_node);
	for (int i = 0; rc == 0 && i < vcpus; i++) {
		rc = vm__create_vcpu(vm, &vm->vcpus[i], kvm_fd, i);
		vm->vcpu_count = i + 1;
	}
	close(kvm_fd);
	if (rc < 0)
		goto fail;
	*out = vm;
	return 0;
fail:
	vm__destroy_bare(vm);
	return rc;
}

int vm__create_bare(struct vmm_vm **out, uint64_t memory_bytes, int vcpus)
{
	return vm__create_numa(out, memory_bytes, -1, vcpus);
}

int ls_vm__create(const struct ls_vm_config *config, const uint8_t *image, uint64_t image_length,
		  const char *arg, struct ls_vm **out)
{
	struct vmm_vm *vm = NULL;
	int rc;

	if (config == NULL || image == NULL || out == NULL || !(config->scale > 0))
		return -EINVAL;
	*out = NULL;
	rc = vm__create_numa(&vm, config->memory_bytes, config->numa_node, config->vcpus < 1 ? 1 : config->vcpus);
	if (rc < 0)
		return rc;
	vm->config = *config;
	vm->state = LS_VM_RUNNING;
	for (int i = 0; i < vm->vcpu_count; i++)
		vm->vcpus[i].clock_ns = config->start_ns;
	/* 32.32 fixed point: ns per tick = 1e6 / kHz, times the scale */
	vm->mult = (uint64_t)((double)(1000000ull << 32) / (double)vm->tsc_khz * config->scale);
	vm->arg = strdup(arg != NULL ? arg : "");
	vm->rx = calloc(VMM_RX_MAX, sizeof *vm->rx);
	vm->tx = calloc(VMM_TX_MAX, sizeof *vm->tx);
	vm->tx_bytes = malloc(VMM_TX_BYTES);
	vm->console = malloc(VMM_CONSOLE_MAX);
	if (vm->arg == NULL || vm->rx == NULL || vm->tx == NULL || vm->tx_bytes == NULL || vm->console == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = elf__load(vm, image, image_length);
	if (rc < 0)
		goto fail;
	rc = cpu__start_threads(vm);
	if (rc < 0)
		goto fail;
	*out = (struct ls_vm *)vm;
	return 0;
fail:
	vm__destroy_bare(vm);
	return rc;
}

int ls_vm__begin(struct ls_vm *handle, int64_t start_ns, int64_t end_ns,
		 const struct ls_live_delivery *deliveries, int32_t delivery_count, const uint8_t *delivery_bytes)
{
	struct vmm_vm *vm = (struct vmm_vm *)handle;

	if (vm == NULL || end_ns <= start_ns || delivery_count < 0 || (delivery_count > 0 && (deliveries == NULL || delivery_bytes == NULL)))
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (vm->command != VMM_CMD_NONE || vm->done < vm->vcpu_count) {
		pthread_mutex_unlock(&vm->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&vm->lock);
	/* the threads are parked: the queues are ours until the window is posted */
	for (int32_t i = 0; i < delivery_count; i++) {
		const struct ls_live_delivery *d = &deliveries[i];
		struct vmm_frame *slot;

		if (vm->state != LS_VM_RUNNING)
			break; /* nobody to receive them */
		if (vm->rx_count == VMM_RX_MAX || d->length > LS_GUEST_FRAME_MAX) {
			vm->dropped++;
			continue;
		}
		slot = &vm->rx[(vm->rx_head + vm->rx_count) % VMM_RX_MAX];
		slot->time_ns = d->time_ns;
		slot->length = d->length;
		memcpy(slot->data, delivery_bytes + d->offset, d->length);
		vm->rx_count++;
	}
	vm->window_start_ns = start_ns;
	vm->window_end_ns = end_ns;
	pthread_mutex_lock(&vm->lock);
	vm->done = 0;
	vm->generation++;
	vm->command = VMM_CMD_WINDOW;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int ls_vm__end(struct ls_vm *handle, struct ls_vm_result *result, struct ls_live_frame *out, int32_t out_max,
	       uint8_t *out_bytes, uint32_t out_capacity, char *console, uint32_t console_capacity)
{
	struct vmm_vm *vm = (struct vmm_vm *)handle;
	int32_t frames = 0;
	uint32_t used = 0, text;
	int running = 0, waiting = 0;

	if (vm == NULL || result == NULL)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	while (vm->done < vm->vcpu_count)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->command = VMM_CMD_NONE;
	pthread_mutex_unlock(&vm->lock);

	memset(result, 0, sizeof *result);
	result->clock_ns = INT64_MIN;
	result->wait_until_ns = INT64_MAX;
	for (int i = 0; i < vm->vcpu_count; i++) {
		struct vmm_vcpu *vcpu = &vm->vcpus[i];

		if (vcpu->state != VMM_CPU_PARKED || i == 0) {
			if (vcpu->clock_ns > result->clock_ns)
				result->clock_ns = vcpu->clock_ns;
		}
		if (vcpu->state == VMM_CPU_RUNNING)
			running++;
		if (vcpu->state == VMM_CPU_WAITING) {
			waiting++;
			if (vcpu->wait_until_ns < result->wait_until_ns)
				result->wait_until_ns = vcpu->wait_until_ns;
			result->wake_on_frame |= vcpu->wake_on_frame;
		}
		/* a start asked of a parked vCPU: it runs in the next window */
		if (vcpu->state == VMM_CPU_PARKED && vcpu->start_pending)
			running++;
		result->ran_ns += vcpu->ran_ns;
		result->exits += vcpu->exits;
		result->kicks += vcpu->kicks;
		if (vcpu->overshoot_ns_max > result->overshoot_ns_max)
			result->overshoot_ns_max = vcpu->overshoot_ns_max;
		vcpu->ran_ns = 0;
		vcpu->overshoot_ns_max = 0;
		vcpu->exits = 0;
		vcpu->kicks = 0;
	}
	if (vm->state != LS_VM_RUNNING) {
		result->state = vm->state;
		result->clock_ns = vm->ended_ns;
	} else {
		result->state = running == 0 && waiting > 0 ? LS_VM_WAITING : LS_VM_RUNNING;
	}
	result->exit_code = vm->exit_code;
	memcpy(result->error, vm->error, sizeof result->error);
	for (int32_t i = 0; i < vm->tx_count; i++) {
		const struct ls_live_frame *f = &vm->tx[i];

		if (out == NULL || frames == out_max || f->length > out_capacity - used) {
			vm->dropped++;
			continue;
		}
		out[frames] = *f;
		out[frames].offset = used;
		memcpy(out_bytes + used, vm->tx_bytes + f->offset, f->length);
		used += f->length;
		frames++;
	}
	result->frames_out = frames;
	result->frames_dropped = vm->dropped;
	text = console == NULL ? 0 : vm->console_used < console_capacity ? vm->console_used : console_capacity;
	if (text > 0)
		memcpy(console, vm->console, text);
	result->console_length = text;
	/* the next window starts afresh */
	vm->tx_count = 0;
	vm->tx_used = 0;
	vm->console_used = 0;
	vm->dropped = 0;
	return 0;
}

int ls_vm__destroy(struct ls_vm *handle)
{
	struct vmm_vm *vm = (struct vmm_vm *)handle;

	if (vm == NULL)
		return -EINVAL;
	cpu__stop_threads(vm);
	vm__destroy_bare(vm);
	return 0;
}

long long ls_vm__exit_cost_ns(void)
{
	return cpu__exit_cost_ns();
}

long long ls_vm__kick_cost_ns(void)
{
	return cpu__kick_cost_ns_get();
}

int ls_vm__bench_exits(int32_t count, int64_t *out_ns)
{
	return cpu__bench_exits(count, out_ns);
}

int ls_vm__bench_kicks(int32_t count, int64_t quantum_ns, int64_t *out_overshoot_ns)
{
	return cpu__bench_kicks(count, quantum_ns, out_overshoot_ns);
}
