#include "util.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int util__read_text(int dirfd, const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd, err = 0;

	if (len == 0)
		return -EINVAL;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		err = -errno;
		n = 0;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	close(fd);
	return err ? err : (int)n;
}

int util__read_ull(int dirfd, const char *path, int base, unsigned long long *value)
{
	char text[64], *end;
	int err;

	err = util__read_text(dirfd, path, text, sizeof text);
	if (err < 0)
		return err;
	if (err == 0)
		return -EINVAL;
	errno = 0;
	*value = strtoull(text, &end, base);
	if (errno || *end != '\0')
		return -EINVAL;
	return 0;
}

int util__exists(int dirfd, const char *path)
{
	return faccessat(dirfd, path, F_OK, 0) == 0;
}

int util__list_add(char *buf, size_t len, const char *word)
{
	size_t used = strlen(buf), need = strlen(word) + (used ? 1 : 0);
	const char *p = buf;

	/* Whole-word search: "cpu" must not match inside "cpuset". */
	while ((p = strstr(p, word)) != NULL) {
		size_t wl = strlen(word);
		if ((p == buf || p[-1] == ' ') && (p[wl] == '\0' || p[wl] == ' '))
			return 0;
		p += wl;
	}
	if (used + need + 1 > len)
		return -ENAMETOOLONG;
	if (used)
		buf[used++] = ' ';
	memcpy(buf + used, word, strlen(word) + 1);
	return 0;
}

long long util__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int util__kvm_create_vm(int kvm_fd)
{
	int fd = -1;

	for (int attempt = 0; attempt < 8; attempt++) {
		fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
		if (fd >= 0 || errno != EINTR)
			break;
	}
	return fd < 0 ? -errno : fd;
}

void util__host_mac(unsigned char mac[6], int index)
{
	mac[0] = 0x02;
	mac[1] = 0x4c;
	mac[2] = 0x53;
	mac[3] = (unsigned char)(index >> 16);
	mac[4] = (unsigned char)(index >> 8);
	mac[5] = (unsigned char)index;
}
