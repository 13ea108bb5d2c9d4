/*
 * cgroup probe: which v1 hierarchies are mounted, where cgroup2 is, and
 * whether cells can be frozen (v1 freezer or v2 cgroup.freeze).
 *
 * Real mounts are recognised by statfs magic. A directory that is not a
 * cgroup filesystem is still accepted when its files look like one
 * (cgroup.procs for v1, cgroup.controllers for v2), so tests can point the
 * probe at a fake tree; by_structure records that this happened.
 */
#include "livestack.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#define CGROUP_SUPER_MAGIC 0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270

/* A cgroup root holds ~15 mounts; a bound keeps a wrong root cheap. */
#define CGROUP_SCAN_MAX 256
#define CGROUP_HIERARCHIES_MAX 32

enum cgroup_kind { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

static enum cgroup_kind cgroup__kind(int dirfd, int *by_structure)
{
	struct statfs sfs;

	if (fstatfs(dirfd, &sfs) == 0) {
		if (sfs.f_type == CGROUP_SUPER_MAGIC)
			return CGROUP_V1;
		if (sfs.f_type == CGROUP2_SUPER_MAGIC)
			return CGROUP_V2;
	}
	if (util__exists(dirfd, "cgroup.controllers")) {
		*by_structure = 1;
		return CGROUP_V2;
	}
	if (util__exists(dirfd, "cgroup.procs")) {
		*by_structure = 1;
		return CGROUP_V1;
	}
	return CGROUP_NONE;
}

static unsigned int cgroup__controller_bit(const char *name)
{
	static const struct { const char *name; unsigned int bit; } known[] = {
		{ "cpu", LS_CG_CPU },       { "cpuacct", LS_CG_CPUACCT },
		{ "cpuset", LS_CG_CPUSET }, { "memory", LS_CG_MEMORY },
		{ "freezer", LS_CG_FREEZER }, { "pids", LS_CG_PIDS },
	};

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(known[i].name, name) == 0)
			return known[i].bit;
	return 0;
}

/* A v1 mount directory is named after its controllers, joined by commas
 * ("cpu,cpuacct"; distributions add "cpu" and "cpuacct" symlinks to it). */
static void cgroup__add_v1_names(struct ls_cgroup_probe *out, const char *dir_name)
{
	char names[NAME_MAX + 1], *save = NULL;

	snprintf(names, sizeof names, "%s", dir_name);
	for (char *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		out->v1_mask |= cgroup__controller_bit(name);
		if (util__list_add(out->v1_names, sizeof out->v1_names, name) < 0 && !out->error)
			out->error = -ENAMETOOLONG;
	}
}

/* cgroup.freeze exists in every non-root v2 cgroup on kernels >= 5.2. Look
 * for an existing child first (no side effects, and the only way for a fake
 * tree); on a real cgroup2 mount create an empty child and remove it again. */
static int cgroup__v2_can_freeze(int v2_fd, int real_mount)
{
	char probe_name[64];
	int found = 0, scanned = 0, child_fd, err;
	struct dirent *entry;
	struct utsname uts;
	int major = 0, minor = 0;
	DIR *dir;
	int dir_fd = dup(v2_fd);

	if (dir_fd >= 0) {
		dir = fdopendir(dir_fd);
		if (dir == NULL) {
			close(dir_fd);
		} else {
			while (!found && scanned++ < CGROUP_SCAN_MAX && (entry = readdir(dir))) {
				if (entry->d_name[0] == '.')
					continue;
				/* O_DIRECTORY skips files; d_type may be DT_UNKNOWN. */
				child_fd = openat(v2_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (child_fd < 0)
					continue;
				found = util__exists(child_fd, "cgroup.freeze");
				close(child_fd);
			}
			closedir(dir);
		}
	}
	if (found || !real_mount)
		return found;

	snprintf(probe_name, sizeof probe_name, "livestack-probe-%d", (int)getpid());
	if (mkdirat(v2_fd, probe_name, 0755) == 0) {
		child_fd = openat(v2_fd, probe_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (child_fd >= 0) {
			found = util__exists(child_fd, "cgroup.freeze");
			close(child_fd);
		}
		/* An empty cgroup can always be removed; if not, say so loudly
		 * rather than leave it unnoticed. */
		if (unlinkat(v2_fd, probe_name, AT_REMOVEDIR) < 0)
			return -errno;
		return found;
	}
	err = errno;
	/* Not allowed to create cgroups here (not root, delegated subtree,
	 * read-only): fall back to the kernel version that added cgroup.freeze. */
	if (err == EACCES || err == EPERM || err == EROFS) {
		if (uname(&uts) == 0 && sscanf(uts.release, "%d.%d", &major, &minor) == 2)
			return major > 5 || (major == 5 && minor >= 2);
	}
	return -err;
}

static void cgroup__set_v2(struct ls_cgroup_probe *out, int v2_fd, const char *path, int real_mount)
{
	char controllers[LS_NAMES_MAX];
	int err;

	out->v2 = 1;
	snprintf(out->v2_path, sizeof out->v2_path, "%s", path);
	err = util__read_text(v2_fd, "cgroup.controllers", controllers, sizeof controllers);
	if (err >= 0)
		snprintf(out->v2_controllers, sizeof out->v2_controllers, "%s", controllers);
	else if (!out->error)
		out->error = err;
	err = cgroup__v2_can_freeze(v2_fd, real_mount);
	if (err > 0)
		out->freezer_v2 = 1;
	else if (err < 0 && !out->error)
		out->error = err;
}

int ls_cgroup__probe(const char *root, struct ls_cgroup_probe *out)
{
	struct { dev_t dev; ino_t ino; } seen[CGROUP_HIERARCHIES_MAX];
	int root_fd = -1, child_fd = -1, scanned = 0, n_seen = 0, result = 0, structural;
	char path[LS_PATH_MAX + NAME_MAX + 2];
	DIR *dir = NULL;
	struct dirent *entry;
	struct stat st;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	if (root == NULL)
		root = "/sys/fs/cgroup";
	if (strlen(root) >= LS_PATH_MAX) {
		result = out->error = -ENAMETOOLONG;
		goto out;
	}

	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		result = out->error = -errno;
		goto out;
	}

	structural = 0;
	switch (cgroup__kind(root_fd, &structural)) {
	case CGROUP_V2: /* pure unified mode: no v1 hierarchies beside it */
		out->v2_at_root = 1;
		out->by_structure |= structural;
		cgroup__set_v2(out, root_fd, root, !structural);
		goto out;
	case CGROUP_V1: /* root is itself one v1 hierarchy, not a mount root */
		result = out->error = -EINVAL;
		goto out;
	case CGROUP_NONE:
		break;
	}

	{
		int dir_fd = dup(root_fd);
		if (dir_fd < 0 || (dir = fdopendir(dir_fd)) == NULL) {
			result = out->error = -errno;
			if (dir_fd >= 0)
				close(dir_fd);
			goto out;
		}
	}
	while (scanned++ < CGROUP_SCAN_MAX && (entry = readdir(dir))) {
		int duplicate = 0;

		if (entry->d_name[0] == '.')
			continue;
		/* O_DIRECTORY follows the cpu -> cpu,cpuacct symlinks. */
		child_fd = openat(root_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (child_fd < 0)
			continue;
		structural = 0;
		switch (cgroup__kind(child_fd, &structural)) {
		case CGROUP_V1:
			out->by_structure |= structural;
			cgroup__add_v1_names(out, entry->d_name);
			if (out->v1_mask & LS_CG_FREEZER)
				out->freezer_v1 = 1;
			/* Symlinks make one hierarchy appear under several names. */
			if (fstat(child_fd, &st) == 0) {
				for (int i = 0; i < n_seen; i++)
					duplicate |= seen[i].dev == st.st_dev && seen[i].ino == st.st_ino;
				if (!duplicate && n_seen < CGROUP_HIERARCHIES_MAX) {
					seen[n_seen].dev = st.st_dev;
					seen[n_seen].ino = st.st_ino;
					n_seen++;
				}
			}
			if (!duplicate)
				out->v1_hierarchies++;
			break;
		case CGROUP_V2:
			if (!out->v2) {
				out->by_structure |= structural;
				snprintf(path, sizeof path, "%s/%s", root, entry->d_name);
				cgroup__set_v2(out, child_fd, path, !structural);
			}
			break;
		case CGROUP_NONE:
			break;
		}
		close(child_fd);
		child_fd = -1;
	}

out:
	if (dir)
		closedir(dir);
	if (child_fd >= 0)
		close(child_fd);
	if (root_fd >= 0)
		close(root_fd);
	return result;
}
