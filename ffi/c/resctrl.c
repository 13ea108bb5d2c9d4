/*
 * resctrl probe (Intel RDT / AMD PQoS, Documentation/arch/x86/resctrl.rst):
 * can cells get their own L3 ways (cache_ways) and memory bandwidth
 * (mem_bandwidth)? Where the CPU or kernel lacks it, the doctor reports it
 * and the runtime ignores those settings.
 */
#include "livestack.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#define RDTGROUP_SUPER_MAGIC 0x7655821

/* Keeps the first failure; missing optional files are not failures. */
static void resctrl__note(struct ls_resctrl_probe *out, int err)
{
	if (err < 0 && err != -ENOENT && !out->error)
		out->error = err;
}

static int resctrl__read_int(struct ls_resctrl_probe *out, int dirfd, const char *path, int *value)
{
	unsigned long long v = 0;
	int err = util__read_ull(dirfd, path, 10, &v);

	resctrl__note(out, err);
	if (err == 0)
		*value = v > 0x7fffffff ? 0x7fffffff : (int)v;
	return err;
}

int ls_resctrl__probe(const char *root, struct ls_resctrl_probe *out)
{
	int root_fd = -1, dir_fd = -1, result = 0, err;
	struct statfs sfs;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	if (root == NULL)
		root = "/sys/fs/resctrl";

	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		/* Absent is an answer, not an error. */
		if (errno != ENOENT && errno != ENOTDIR)
			result = out->error = -errno;
		goto out;
	}
	out->root_exists = 1;

	/* Kernels built with resctrl create the empty mount point even when
	 * nothing is mounted there: present needs the mount (or its files). */
	if (fstatfs(root_fd, &sfs) == 0 && sfs.f_type == RDTGROUP_SUPER_MAGIC) {
		out->present = 1;
	} else if (util__exists(root_fd, "info") && util__exists(root_fd, "schemata")) {
		out->present = 1;
		out->by_structure = 1;
	} else {
		goto out;
	}

	dir_fd = openat(root_fd, "info/L3", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd >= 0) {
		out->l3 = 1;
		err = util__read_ull(dir_fd, "cbm_mask", 16, &out->l3_cbm_mask);
		resctrl__note(out, err);
		if (err == 0)
			out->l3_ways = __builtin_popcountll(out->l3_cbm_mask);
		resctrl__read_int(out, dir_fd, "num_closids", &out->l3_num_closids);
		close(dir_fd);
		dir_fd = -1;
	} else {
		resctrl__note(out, -errno);
	}

	dir_fd = openat(root_fd, "info/MB", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd >= 0) {
		out->mb = 1;
		resctrl__read_int(out, dir_fd, "bandwidth_gran", &out->mb_bandwidth_gran);
		resctrl__read_int(out, dir_fd, "min_bandwidth", &out->mb_min_bandwidth);
		resctrl__read_int(out, dir_fd, "num_closids", &out->mb_num_closids);
		close(dir_fd);
		dir_fd = -1;
	} else {
		resctrl__note(out, -errno);
	}

out:
	if (dir_fd >= 0)
		close(dir_fd);
	if (root_fd >= 0)
		close(root_fd);
	return result;
}
