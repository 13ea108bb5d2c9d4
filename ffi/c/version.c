#include "livestack.h"
#include "livestack-clock.h"

#include <errno.h>
#include <string.h>

const char *ls_version(void)
{
	return LS_VERSION;
}

int ls_abi_version(void)
{
	return LS_ABI_VERSION;
}

long ls_sizeof(const char *type_name)
{
	/* Lets the koffi bindings refuse to run against a header they do not
	 * mirror, instead of reading garbage from a struct of another layout. */
	static const struct { const char *name; long size; } sizes[] = {
		{ "ls_kvm_probe", sizeof(struct ls_kvm_probe) },
		{ "ls_cgroup_probe", sizeof(struct ls_cgroup_probe) },
		{ "ls_resctrl_probe", sizeof(struct ls_resctrl_probe) },
		{ "ls_tap_probe", sizeof(struct ls_tap_probe) },
		{ "ls_clock_wait", sizeof(struct ls_clock_wait) },
		{ "ls_clock_waits", sizeof(struct ls_clock_waits) },
		{ "ls_clock_snapshot", sizeof(struct ls_clock_snapshot) },
		{ "ls_live_cell", sizeof(struct ls_live_cell) },
		{ "ls_live_delivery", sizeof(struct ls_live_delivery) },
		{ "ls_live_frame", sizeof(struct ls_live_frame) },
		{ "ls_live_stats", sizeof(struct ls_live_stats) },
		{ "ls_ring_stats", sizeof(struct ls_ring_stats) },
		{ "ls_vm_config", sizeof(struct ls_vm_config) },
		{ "ls_vm_result", sizeof(struct ls_vm_result) },
	};

	if (type_name == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		if (strcmp(sizes[i].name, type_name) == 0)
			return sizes[i].size;
	return -ENOENT;
}
