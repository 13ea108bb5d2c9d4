/*
 * hcall.c — port I/O exits: the hypercall ABI (livestack-guest.h), the serial
 * console, and frames in and out of the guest.
 *
 * Every argument is read from the mailbox page and every guest buffer is
 * bounds-checked against guest memory: a guest can only hurt itself (a bad
 * pointer returns -EFAULT to it).
 */
#define _GNU_SOURCE
#include "vmm.h"

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

int hcall__frame_ready(struct vmm_vm *vm)
{
	volatile struct ls_guest_rings *rings = hcall__rings(vm);

	return rings->rx_head != rings->rx_tail || (vm->rx_count > 0 && vm->rx[vm->rx_head].time_ns <= vm->clock_ns);
}

int64_t hcall__next_frame_ns(const struct vmm_vm *vm)
{
	for (uint32_t i = 0; i < vm->rx_count; i++) {
		const struct vmm_frame *f = &vm->rx[(vm->rx_head + i) % VMM_RX_MAX];

		if (f->time_ns > vm->clock_ns)
			return f->time_ns;
	}
	return INT64_MAX;
}

/* Frames that have arrived by the guest's clock go into its receive ring (while it has room; the rest wait). */
void hcall__rx_fill(struct vmm_vm *vm)
{
	volatile struct ls_guest_rings *rings = hcall__rings(vm);
	uint32_t head = rings->rx_head;

	while (vm->rx_count > 0 && vm->rx[vm->rx_head].time_ns <= vm->clock_ns &&
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
 * than a frame before it nor later than the VMM's clock (a guest may write
 * any time into a slot; it cannot send into the past or the future). */
void hcall__tx_drain(struct vmm_vm *vm)
{
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
		if (time_ns > vm->clock_ns)
			time_ns = vm->clock_ns;
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

/* Ends the current line: "VIRTUAL_NS TEXT\n" into this window's console buffer. */
void hcall__console_flush(struct vmm_vm *vm)
{
	char stamp[32];
	int n;

	if (vm->line_used == 0)
		return;
	n = snprintf(stamp, sizeof stamp, "%lld ", (long long)vm->line_ns);
	if (vm->console_used + (uint32_t)n + vm->line_used + 1 <= VMM_CONSOLE_MAX) {
		hcall__console_append(vm, stamp, (uint32_t)n);
		hcall__console_append(vm, vm->line, vm->line_used);
		hcall__console_append(vm, "\n", 1);
	}
	vm->line_used = 0;
}

static void hcall__console_byte(struct vmm_vm *vm, char c)
{
	if (c == '\r')
		return;
	if (c == '\n') {
		if (vm->line_used == 0) {
			vm->line_ns = vm->clock_ns;
			vm->line[vm->line_used++] = ' ';
		}
		hcall__console_flush(vm);
		return;
	}
	if (vm->line_used == 0)
		vm->line_ns = vm->clock_ns; /* a line is stamped with the time its first byte was written */
	vm->line[vm->line_used++] = c;
	if (vm->line_used == VMM_LINE_MAX)
		hcall__console_flush(vm);
}

void hcall__crash(struct vmm_vm *vm, const char *what)
{
	hcall__console_flush(vm);
	vm->state = LS_VM_CRASHED;
	snprintf(vm->error, sizeof vm->error, "%s", what);
}

static int64_t hcall__info(struct vmm_vm *vm, uint64_t gva)
{
	struct ls_guest_info *info = vm__guest(vm, gva, sizeof *info);
	int index = vm->config.host_index;

	if (info == NULL)
		return -EFAULT;
	memset(info, 0, sizeof *info);
	info->address = vm->config.address;
	info->prefix_length = vm->config.prefix_length;
	/* the same MAC as a process cell of this index (ffi/c/live.c) */
	info->mac[0] = 0x02;
	info->mac[1] = 0x4c;
	info->mac[2] = 0x53;
	info->mac[3] = (uint8_t)(index >> 16);
	info->mac[4] = (uint8_t)(index >> 8);
	info->mac[5] = (uint8_t)index;
	info->host_index = (uint16_t)index;
	info->memory_bytes = vm->mem_size;
	info->tsc_khz = vm->tsc_khz;
	return 0;
}

static int64_t hcall__print(struct vmm_vm *vm, uint64_t gva, uint64_t length)
{
	const char *text;

	if (length > LS_GUEST_TEXT_MAX)
		length = LS_GUEST_TEXT_MAX;
	text = vm__guest(vm, gva, length);
	if (text == NULL)
		return -EFAULT;
	for (uint64_t i = 0; i < length; i++)
		hcall__console_byte(vm, text[i]);
	return (int64_t)length;
}

static int64_t hcall__arg(struct vmm_vm *vm, uint64_t gva, uint64_t size)
{
	size_t length = strlen(vm->arg);
	char *buffer = vm__guest(vm, gva, size);

	if (buffer == NULL)
		return -EFAULT;
	if (size > 0) {
		size_t n = length < size - 1 ? length : size - 1;

		memcpy(buffer, vm->arg, n);
		buffer[n] = '\0';
	}
	return (int64_t)length;
}

static int hcall__call(struct vmm_vm *vm, uint32_t call)
{
	struct ls_guest_mailbox *mailbox = vm__guest(vm, LS_GUEST_MAILBOX_GPA, sizeof *mailbox);
	uint64_t a0 = mailbox->a0, a1 = mailbox->a1;

	switch (call) {
	case 0: /* no-op (calibration) */
		mailbox->ret = 0;
		return 0;
	case LS_HC_PRINT:
		mailbox->ret = hcall__print(vm, a0, a1);
		return 0;
	case LS_HC_NOW:
		mailbox->ret = vm->clock_ns;
		return 0;
	case LS_HC_WAIT_UNTIL:
		vm->wait_until_ns = (int64_t)a0 < 0 ? INT64_MAX : (int64_t)a0;
		vm->wake_on_frame = a1 != 0;
		if (vm->wake_on_frame && hcall__frame_ready(vm)) {
			mailbox->ret = 1;
			return 0;
		}
		if (vm->wait_until_ns <= vm->clock_ns) {
			mailbox->ret = 0;
			return 0;
		}
		vm->state = LS_VM_WAITING;
		return 1;
	case LS_HC_FLUSH: /* the send ring was taken on the way out */
		mailbox->ret = 0;
		return 0;
	case LS_HC_EXIT:
		hcall__console_flush(vm);
		vm->exit_code = (int)(int64_t)a0;
		vm->state = LS_VM_EXITED;
		return 1;
	case LS_HC_INFO:
		mailbox->ret = hcall__info(vm, a0);
		return 0;
	case LS_HC_ARG:
		mailbox->ret = hcall__arg(vm, a0, a1);
		return 0;
	default:
		mailbox->ret = -ENOSYS;
		return 0;
	}
}

int hcall__io(struct vmm_vm *vm)
{
	struct kvm_run *run = vm->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t value = 0;

	if (run->io.direction == KVM_EXIT_IO_IN) {
		/* nothing to read here: all ones, like an empty bus */
		memset(data, 0xff, (size_t)run->io.size * run->io.count);
		return 0;
	}
	if (run->io.port == LS_GUEST_PORT_SERIAL) {
		for (uint32_t i = 0; i < run->io.count; i++)
			hcall__console_byte(vm, (char)data[i * run->io.size]);
		return 0;
	}
	if (run->io.port == LS_GUEST_PORT_HCALL) {
		memcpy(&value, data, run->io.size < 4 ? run->io.size : 4);
		return hcall__call(vm, value);
	}
	return 0; /* other ports: ignored */
}
