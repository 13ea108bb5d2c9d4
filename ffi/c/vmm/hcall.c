/*
 * hcall.c — port I/O exits: the hypercall ABI (livestack-guest.h), the serial
 * console, and the rings that carry frames in and out of the guest.
 *
 * Every argument is read from the calling vCPU's mailbox page and every guest
 * buffer is bounds-checked against guest memory: a guest can only hurt itself
 * (a bad pointer returns -EFAULT to it). What the vCPUs share (the frame
 * queues, the console, the guest's end) is touched under the VM's io_lock.
 */
#define _GNU_SOURCE
#include "vmm.h"
#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static volatile struct ls_guest_rings *hcall__rings(struct vmm_vm *vm)
{
	return vm__guest(vm, LS_GUEST_RINGS_GPA, sizeof(struct ls_guest_rings));
}

static struct ls_guest_slot *hcall__slot(struct vmm_vm *vm, uint64_t ring_gpa, uint32_t index)
{
	return vm__guest(vm, ring_gpa + (uint64_t)(index % LS_GUEST_RING_SLOTS) * LS_GUEST_SLOT_BYTES, LS_GUEST_SLOT_BYTES);
}

int hcall__frame_ready(struct vmm_vcpu *vcpu)
{
	struct vmm_vm *vm = vcpu->vm;
	volatile struct ls_guest_rings *rings = hcall__rings(vm);

	return rings->rx_head != rings->rx_tail || (vm->rx_count > 0 && vm->rx[vm->rx_head].time_ns <= vcpu->clock_ns);
}

int64_t hcall__next_frame_ns(const struct vmm_vm *vm, int64_t after_ns)
{
	for (uint32_t i = 0; i < vm->rx_count; i++) {
		const struct vmm_frame *f = &vm->rx[(vm->rx_head + i) % VMM_RX_MAX];

		if (f->time_ns > after_ns)
			return f->time_ns;
	}
	return INT64_MAX;
}

/* Frames that have arrived by this vCPU's clock go into the receive ring (while it has room; the rest wait). */
void hcall__rx_fill(struct vmm_vcpu *vcpu)
{
	struct vmm_vm *vm = vcpu->vm;
	volatile struct ls_guest_rings *rings = hcall__rings(vm);
	uint32_t head = rings->rx_head;

	while (vm->rx_count > 0 && vm->rx[vm->rx_head].time_ns <= vcpu->clock_ns &&
	       head - __atomic_load_n(&rings->rx_tail, __ATOMIC_ACQUIRE) < LS_GUEST_RING_SLOTS) {
		struct vmm_frame *f = &vm->rx[vm->rx_head];
		struct ls_guest_slot *slot = hcall__slot(vm, LS_GUEST_RX_GPA, head);

		slot->time_ns = f->time_ns;
		slot->length = f->length;
		memcpy(slot->data, f->data, f->length);
		head++;
		vm->rx_head = (vm->rx_head + 1) % VMM_RX_MAX;
		vm->rx_count--;
	}
	__atomic_store_n(&rings->rx_head, head, __ATOMIC_RELEASE);
}

/* Takes what the guest sent: stamped with the guest's clock, never earlier
 * than a frame before it nor later than this vCPU's clock (a guest may write
 * any time into a slot; it cannot send into the past or the future). */
void hcall__tx_drain(struct vmm_vcpu *vcpu)
{
	struct vmm_vm *vm = vcpu->vm;
	volatile struct ls_guest_rings *rings = hcall__rings(vm);
	uint32_t tail = rings->tx_tail, head = __atomic_load_n(&rings->tx_head, __ATOMIC_ACQUIRE);

	if (head - tail > LS_GUEST_RING_SLOTS)
		tail = head - LS_GUEST_RING_SLOTS; /* a guest that wrote nonsense loses frames, not the VMM */
	for (; tail != head; tail++) {
		const struct ls_guest_slot *slot = hcall__slot(vm, LS_GUEST_TX_GPA, tail);
		uint32_t length = slot->length;
		int64_t time_ns = slot->time_ns;
		struct ls_live_frame *out;

		if (length < 14 || length > LS_GUEST_FRAME_MAX)
			continue;
		if (vm->tx_count == VMM_TX_MAX || length > VMM_TX_BYTES - vm->tx_used) {
			vm->dropped++;
			continue;
		}
		if (time_ns < vm->tx_last_ns)
			time_ns = vm->tx_last_ns;
		if (time_ns > vcpu->clock_ns)
			time_ns = vcpu->clock_ns > vm->tx_last_ns ? vcpu->clock_ns : vm->tx_last_ns;
		vm->tx_last_ns = time_ns;
		out = &vm->tx[vm->tx_count++];
		memset(out, 0, sizeof *out);
		out->time_ns = time_ns;
		out->offset = vm->tx_used;
		out->length = length;
		memcpy(vm->tx_bytes + vm->tx_used, slot->data, length);
		vm->tx_used += length;
	}
	__atomic_store_n(&rings->tx_tail, tail, __ATOMIC_RELEASE);
}

static void hcall__console_append(struct vmm_vm *vm, const char *text, uint32_t length)
{
	uint32_t room = VMM_CONSOLE_MAX - vm->console_used;

	if (length > room)
		length = room;
	memcpy(vm->console + vm->console_used, text, length);
	vm->console_used += length;
}

/* Ends the vCPU's current line: "VIRTUAL_NS TEXT\n" into this window's console buffer (io_lock held). */
static void hcall__console_flush(struct vmm_vcpu *vcpu)
{
	struct vmm_vm *vm = vcpu->vm;
	char stamp[32];
	int n;

	if (vcpu->line_used == 0)
		return;
	n = snprintf(stamp, sizeof stamp, "%lld ", (long long)vcpu->line_ns);
	if (vm->console_used + (uint32_t)n + vcpu->line_used + 1 <= VMM_CONSOLE_MAX) {
		hcall__console_append(vm, stamp, (uint32_t)n);
		hcall__console_append(vm, vcpu->line, vcpu->line_used);
		hcall__console_append(vm, "\n", 1);
	}
	vcpu->line_used = 0;
}

static void hcall__console_byte(struct vmm_vcpu *vcpu, char c)
{
	if (c == '\r')
		return;
	if (c == '\n') {
		if (vcpu->line_used == 0) {
			vcpu->line_ns = vcpu->clock_ns;
			vcpu->line[vcpu->line_used++] = ' ';
		}
		hcall__console_flush(vcpu);
		return;
	}
	if (vcpu->line_used == 0)
		vcpu->line_ns = vcpu->clock_ns; /* a line is stamped with the time its first byte was written */
	vcpu->line[vcpu->line_used++] = c;
	if (vcpu->line_used == VMM_LINE_MAX)
		hcall__console_flush(vcpu);
}

/* The guest ends (exit or crash): the first end wins (io_lock held). */
static void hcall__end(struct vmm_vcpu *vcpu, int state, int code, const char *what)
{
	struct vmm_vm *vm = vcpu->vm;

	for (int i = 0; i < vm->vcpu_count; i++)
		hcall__console_flush(&vm->vcpus[i]);
	if (vm->state != LS_VM_RUNNING)
		return;
	vm->exit_code = code;
	vm->ended_ns = vcpu->clock_ns;
	if (what != NULL)
		snprintf(vm->error, sizeof vm->error, "%s", what);
	__atomic_store_n(&vm->state, state, __ATOMIC_RELEASE);
}

void hcall__crash(struct vmm_vcpu *vcpu, const char *what)
{
	pthread_mutex_lock(&vcpu->vm->io_lock);
	hcall__end(vcpu, LS_VM_CRASHED, 0, what);
	pthread_mutex_unlock(&vcpu->vm->io_lock);
}

static int64_t hcall__info(struct vmm_vcpu *vcpu, uint64_t gva)
{
	struct vmm_vm *vm = vcpu->vm;
	struct ls_guest_info *info = vm__guest(vm, gva, sizeof *info);
	int index = vm->config.host_index;

	if (info == NULL)
		return -EFAULT;
	memset(info, 0, sizeof *info);
	info->address = vm->config.address;
	info->prefix_length = vm->config.prefix_length;
	util__host_mac(info->mac, index);
	info->host_index = (uint16_t)index;
	info->memory_bytes = vm->mem_size;
	info->tsc_khz = vm->tsc_khz;
	return 0;
}

static int64_t hcall__print(struct vmm_vcpu *vcpu, uint64_t gva, uint64_t length)
{
	const char *text;

	if (length > LS_GUEST_TEXT_MAX)
		length = LS_GUEST_TEXT_MAX;
	text = vm__guest(vcpu->vm, gva, length);
	if (text == NULL)
		return -EFAULT;
	for (uint64_t i = 0; i < length; i++)
		hcall__console_byte(vcpu, text[i]);
	return (int64_t)length;
}

static int64_t hcall__arg(struct vmm_vcpu *vcpu, uint64_t gva, uint64_t size)
{
	const char *arg = vcpu->vm->arg;
	size_t length = strlen(arg);
	char *buffer = vm__guest(vcpu->vm, gva, size);

	if (buffer == NULL)
		return -EFAULT;
	if (size > 0) {
		size_t n = length < size - 1 ? length : size - 1;

		memcpy(buffer, arg, n);
		buffer[n] = '\0';
	}
	return (int64_t)length;
}

static int64_t hcall__start_cpu(struct vmm_vcpu *vcpu, const struct ls_guest_mailbox *mailbox)
{
	struct vmm_vm *vm = vcpu->vm;
	struct vmm_vcpu *target;

	if (mailbox->a0 == 0 || mailbox->a0 >= (uint64_t)vm->vcpu_count)
		return -EINVAL;
	if (vm__guest(vm, mailbox->a1, 1) == NULL || mailbox->a3 < LS_GUEST_IMAGE_GPA || vm__guest(vm, mailbox->a3 - 64, 64) == NULL)
		return -EFAULT;
	target = &vm->vcpus[mailbox->a0];
	if (target->state != VMM_CPU_PARKED || target->start_pending)
		return -EBUSY;
	target->start_rip = mailbox->a1;
	target->start_rdi = mailbox->a2;
	target->start_rsp = mailbox->a3;
	target->start_ns = vcpu->clock_ns;
	target->start_pending = 1;
	return 0;
}

/* Returns with the call answered in the mailbox, or the vCPU waiting, parked, or the guest ended. */
static void hcall__call(struct vmm_vcpu *vcpu, uint32_t call)
{
	struct vmm_vm *vm = vcpu->vm;
	struct ls_guest_mailbox *mailbox = cpu__mailbox(vcpu);
	uint64_t a0 = mailbox->a0, a1 = mailbox->a1;

	pthread_mutex_lock(&vm->io_lock);
	switch (call) {
	case 0: /* no-op (calibration) */
	case LS_HC_FLUSH: /* the send ring was taken on the way out */
		mailbox->ret = 0;
		break;
	case LS_HC_PRINT:
		mailbox->ret = hcall__print(vcpu, a0, a1);
		break;
	case LS_HC_NOW:
		mailbox->ret = vcpu->clock_ns;
		break;
	case LS_HC_WAIT_UNTIL:
		vcpu->wait_until_ns = (int64_t)a0 < 0 ? INT64_MAX : (int64_t)a0;
		vcpu->wake_on_frame = a1 != 0;
		if (vcpu->wake_on_frame && hcall__frame_ready(vcpu))
			mailbox->ret = 1;
		else if (vcpu->wait_until_ns <= vcpu->clock_ns)
			mailbox->ret = 0;
		else
			vcpu->state = VMM_CPU_WAITING;
		break;
	case LS_HC_EXIT:
		hcall__end(vcpu, LS_VM_EXITED, (int)(int64_t)a0, NULL);
		break;
	case LS_HC_INFO:
		mailbox->ret = hcall__info(vcpu, a0);
		break;
	case LS_HC_ARG:
		mailbox->ret = hcall__arg(vcpu, a0, a1);
		break;
	case LS_HC_START_CPU:
		mailbox->ret = hcall__start_cpu(vcpu, mailbox);
		break;
	case LS_HC_STOP_CPU:
		hcall__console_flush(vcpu);
		if (vcpu->index == 0)
			hcall__end(vcpu, LS_VM_EXITED, 0, NULL);
		else
			vcpu->state = VMM_CPU_PARKED;
		break;
	default:
		mailbox->ret = -ENOSYS;
	}
	pthread_mutex_unlock(&vm->io_lock);
}

void hcall__io(struct vmm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t value = 0;

	if (run->io.direction == KVM_EXIT_IO_IN) {
		/* nothing to read here: all ones, like an empty bus */
		memset(data, 0xff, (size_t)run->io.size * run->io.count);
		return;
	}
	if (run->io.port == LS_GUEST_PORT_SERIAL) {
		pthread_mutex_lock(&vcpu->vm->io_lock);
		for (uint32_t i = 0; i < run->io.count; i++)
			hcall__console_byte(vcpu, (char)data[i * run->io.size]);
		pthread_mutex_unlock(&vcpu->vm->io_lock);
		return;
	}
	if (run->io.port == LS_GUEST_PORT_HCALL) {
		memcpy(&value, data, run->io.size < 4 ? run->io.size : 4);
		hcall__call(vcpu, value);
	}
	/* other ports: ignored */
}
