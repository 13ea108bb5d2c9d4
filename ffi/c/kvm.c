/*
 * KVM capability probe. See KVM-FACTS.md: on PVM-nested hosts /dev/kvm works
 * for ring-3 guests, so "can create a VM" says nothing about full kernels;
 * the doctor reports that separately.
 */
#include "livestack.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* 0 if the capability is absent or the query failed: a probe only reports. */
static int kvm__check_extension(int fd, long cap)
{
	int value = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return value < 0 ? 0 : value;
}

int ls_kvm__probe(struct ls_kvm_probe *out)
{
	int kvm_fd = -1, vm_fd = -1, vcpu_fd = -1, result = 0;
	long long start_ns;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	out->vm_create_ns = -1;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		result = out->error = -errno;
		goto out;
	}
	out->api_version = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (out->api_version < 0) {
		result = out->error = -errno;
		out->api_version = 0;
		goto out;
	}
	if (out->api_version != KVM_API_VERSION) {
		/* The ioctl ABI below is only defined for version 12. */
		result = out->error = -EPROTO;
		goto out;
	}
	out->cap_user_memory = kvm__check_extension(kvm_fd, KVM_CAP_USER_MEMORY);
	out->cap_immediate_exit = kvm__check_extension(kvm_fd, KVM_CAP_IMMEDIATE_EXIT);
	out->cap_tsc_control = kvm__check_extension(kvm_fd, KVM_CAP_TSC_CONTROL);
	out->cap_adjust_clock = kvm__check_extension(kvm_fd, KVM_CAP_ADJUST_CLOCK);

	/* A failed VM creation is a finding, not a probe failure: result stays 0. */
	start_ns = util__now_ns();
	vm_fd = util__kvm_create_vm(kvm_fd);
	if (vm_fd < 0) {
		out->error = vm_fd;
		goto out;
	}
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0) {
		out->error = -errno;
		goto out;
	}
	out->vm_create_ns = util__now_ns() - start_ns;
	out->can_create_vm = 1;

out:
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
	return result;
}
