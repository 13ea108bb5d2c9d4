/*
 * ls-launch: starts one command inside a process cell.
 *
 *   ls-launch [--cgroup-procs FILE]... [--resctrl-tasks FILE]
 *             [--netns /run/netns/NAME] [--hosts FILE] [--bind SRC:DST]...
 *             [--hostname NAME] [--remount-sys] [--die-with-parent]
 *             [--env K=V]... -- PROGRAM [ARG]...
 *
 * In this order, so that every step can still see what it needs:
 *  1. writes its own pid into every cgroup.procs (and the resctrl tasks)
 *     file: first, while /sys/fs/cgroup is surely visible (CELLS-FACTS.md
 *     pitfall 3), and so that everything it becomes is inside the cell;
 *  2. setns(CLONE_NEWNET) into the cell's network namespace;
 *  3. unshare(CLONE_NEWNS [| CLONE_NEWUTS]), makes every mount a slave (MS_REC|
 *     MS_SLAVE: nothing mounted here propagates back to the machine);
 *  4. --remount-sys: a sysfs of the cell's namespace over /sys (so
 *     /sys/class/net shows the cell's devices), with /sys/fs/cgroup carried
 *     over from the old /sys (as `ip netns exec` does, minus hiding cgroups);
 *  5. bind-mounts the hosts file over /etc/hosts and each SRC over DST;
 *  6. sets the hostname, the extra environment (after its own start, so an
 *     LD_PRELOAD given here applies to the command only) and execs.
 *
 * A plain executable, not part of the library: on any error it prints one
 * line to stderr and exits 127 (what a shell returns for "cannot run").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAUNCH_EXIT_FAILURE 127
/* Bounds on repeated options; a cell has ~7 cgroups and a few files. */
#define LAUNCH_ITEMS_MAX 256

struct launch_options {
	const char *cgroup_procs[LAUNCH_ITEMS_MAX];
	int n_cgroup_procs;
	const char *binds[LAUNCH_ITEMS_MAX];
	int n_binds;
	const char *envs[LAUNCH_ITEMS_MAX];
	int n_envs;
	const char *resctrl_tasks;
	const char *netns;
	const char *hosts;
	const char *hostname;
	int remount_sys;
	int die_with_parent;
	char **command;
};

static void launch__die(const char *format, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void launch__die(const char *format, ...)
{
	va_list args;

	fputs("ls-launch: ", stderr);
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
	exit(LAUNCH_EXIT_FAILURE);
}

static void launch__usage(const char *why)
{
	launch__die("%s (usage: ls-launch [--cgroup-procs FILE]... [--resctrl-tasks FILE] "
		    "[--netns PATH] [--hosts FILE] [--bind SRC:DST]... [--hostname NAME] "
		    "[--remount-sys] [--die-with-parent] [--env K=V]... -- PROGRAM [ARG]...)",
		    why);
}

static void launch__push(const char **list, int *count, const char *option, const char *value)
{
	if (*count >= LAUNCH_ITEMS_MAX)
		launch__die("more than %d %s options", LAUNCH_ITEMS_MAX, option);
	list[(*count)++] = value;
}

static void launch__parse(int argc, char **argv, struct launch_options *options)
{
	int i;

	memset(options, 0, sizeof *options);
	for (i = 1; i < argc; i++) {
		const char *option = argv[i];
		const char *value;

		if (strcmp(option, "--") == 0) {
			if (i + 1 >= argc)
				launch__usage("no command after --");
			options->command = argv + i + 1;
			return;
		}
		if (strcmp(option, "--remount-sys") == 0) {
			options->remount_sys = 1;
			continue;
		}
		if (strcmp(option, "--die-with-parent") == 0) {
			options->die_with_parent = 1;
			continue;
		}
		if (i + 1 >= argc)
			launch__usage("an option lacks its value");
		value = argv[++i];
		if (strcmp(option, "--cgroup-procs") == 0)
			launch__push(options->cgroup_procs, &options->n_cgroup_procs, option, value);
		else if (strcmp(option, "--bind") == 0)
			launch__push(options->binds, &options->n_binds, option, value);
		else if (strcmp(option, "--env") == 0)
			launch__push(options->envs, &options->n_envs, option, value);
		else if (strcmp(option, "--resctrl-tasks") == 0)
			options->resctrl_tasks = value;
		else if (strcmp(option, "--netns") == 0)
			options->netns = value;
		else if (strcmp(option, "--hosts") == 0)
			options->hosts = value;
		else if (strcmp(option, "--hostname") == 0)
			options->hostname = value;
		else
			launch__die("unknown option %s", option);
	}
	launch__usage("missing -- before the command");
}

/* cgroup.procs takes one pid per write. create: only for resctrl tasks,
 * which always exists on a real resctrl mount; a fake tree in a test may
 * lack it. */
static void launch__join(const char *path, int create)
{
	char text[32];
	int fd, len;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	if (fd < 0)
		launch__die("cannot open %s: %s", path, strerror(errno));
	len = snprintf(text, sizeof text, "%d\n", (int)getpid());
	do
		n = write(fd, text, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n != len)
		launch__die("cannot join %s: %s", path, n < 0 ? strerror(errno) : "short write");
	if (close(fd) < 0)
		launch__die("cannot join %s: %s", path, strerror(errno));
}

static void launch__enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		launch__die("cannot open network namespace %s: %s", path, strerror(errno));
	if (setns(fd, CLONE_NEWNET) < 0)
		launch__die("setns(%s, CLONE_NEWNET): %s", path, strerror(errno));
	close(fd);
}

/* A sysfs mounted now belongs to the network namespace just entered. The
 * cgroup tree below the old /sys is cloned first and attached again on top
 * of the new sysfs, so the cell still sees (its own) cgroups. */
static void launch__remount_sys(void)
{
	int cgroup_tree = open_tree(AT_FDCWD, "/sys/fs/cgroup", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

	if (cgroup_tree < 0 && errno != ENOENT)
		launch__die("open_tree(/sys/fs/cgroup): %s", strerror(errno));
	if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		launch__die("mount sysfs on /sys: %s", strerror(errno));
	if (cgroup_tree >= 0) {
		if (move_mount(cgroup_tree, "", AT_FDCWD, "/sys/fs/cgroup", MOVE_MOUNT_F_EMPTY_PATH) < 0)
			launch__die("move_mount(/sys/fs/cgroup): %s", strerror(errno));
		close(cgroup_tree);
	}
}

static void launch__bind(const char *source, const char *target)
{
	struct stat st;

	/* The target must exist: LiveStack creates missing ones beforehand
	 * (and removes them afterwards), never the launcher, whose creations
	 * would outlive the cell. */
	if (stat(target, &st) < 0)
		launch__die("bind target %s: %s", target, strerror(errno));
	if (mount(source, target, NULL, MS_BIND, NULL) < 0)
		launch__die("bind %s over %s: %s", source, target, strerror(errno));
}

int main(int argc, char **argv)
{
	struct launch_options options;
	int flags = 0;

	launch__parse(argc, argv, &options);

	for (int i = 0; i < options.n_cgroup_procs; i++)
		launch__join(options.cgroup_procs[i], 0);
	if (options.resctrl_tasks)
		launch__join(options.resctrl_tasks, 1);

	if (options.netns)
		launch__enter_netns(options.netns);

	if (options.hosts || options.n_binds || options.remount_sys)
		flags |= CLONE_NEWNS;
	if (options.hostname)
		flags |= CLONE_NEWUTS;
	if (flags && unshare(flags) < 0)
		launch__die("unshare: %s", strerror(errno));
	if (flags & CLONE_NEWNS) {
		if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
			launch__die("making / a slave mount: %s", strerror(errno));
		if (options.remount_sys)
			launch__remount_sys();
		if (options.hosts)
			launch__bind(options.hosts, "/etc/hosts");
		for (int i = 0; i < options.n_binds; i++) {
			/* SRC is a LiveStack temp file (no ':'); DST may hold ':'. */
			char source[4096];
			const char *colon = strchr(options.binds[i], ':');
			size_t len;

			if (colon == NULL || colon == options.binds[i] || colon[1] == '\0')
				launch__die("--bind %s: expected SRC:DST", options.binds[i]);
			len = (size_t)(colon - options.binds[i]);
			if (len >= sizeof source)
				launch__die("--bind %s: source path too long", options.binds[i]);
			memcpy(source, options.binds[i], len);
			source[len] = '\0';
			launch__bind(source, colon + 1);
		}
	}
	if (options.hostname && sethostname(options.hostname, strlen(options.hostname)) < 0)
		launch__die("sethostname(%s): %s", options.hostname, strerror(errno));

	for (int i = 0; i < options.n_envs; i++) {
		char name[4096];
		const char *equals = strchr(options.envs[i], '=');
		size_t len;

		if (equals == NULL || equals == options.envs[i])
			launch__die("--env %s: expected NAME=VALUE", options.envs[i]);
		len = (size_t)(equals - options.envs[i]);
		if (len >= sizeof name)
			launch__die("--env %s: name too long", options.envs[i]);
		memcpy(name, options.envs[i], len);
		name[len] = '\0';
		if (setenv(name, equals + 1, 1) < 0)
			launch__die("setenv(%s): %s", name, strerror(errno));
	}

	/* Survives exec; if LiveStack dies, the command's first process goes
	 * with it (its children are found through the cgroups by cleanupStale).
	 * The parent may already be gone: then do not start at all. */
	if (options.die_with_parent) {
		pid_t parent = getppid();

		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			launch__die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
		if (parent == 1)
			launch__die("LiveStack exited before the command started");
	}

	execvp(options.command[0], options.command);
	launch__die("cannot run %s: %s", options.command[0], strerror(errno));
}
