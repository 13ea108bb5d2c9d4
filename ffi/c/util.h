/*
 * Private helpers shared by the C files of ffi/c/. Not part of the ABI: the
 * library is built with -fvisibility=hidden, so none of these is exported.
 */
#ifndef LS_UTIL_H
#define LS_UTIL_H

#include <stddef.h>

/* Reads a small text file relative to dirfd into buf (NUL-terminated,
 * trailing newline stripped). Returns the length or -errno. */
int util__read_text(int dirfd, const char *path, char *buf, size_t len);

/* Reads a file holding one integer in the given base. Returns 0 or -errno
 * (-EINVAL if the text is not a number). */
int util__read_ull(int dirfd, const char *path, int base, unsigned long long *value);

/* 1 if path relative to dirfd exists, else 0. */
int util__exists(int dirfd, const char *path);

/* Appends word to a space-separated list in buf unless it is already there.
 * Returns 0, or -ENAMETOOLONG if it does not fit (buf is left unchanged). */
int util__list_add(char *buf, size_t len, const char *word);

/* CLOCK_MONOTONIC in ns. */
long long util__now_ns(void);

/* The MAC the simulated network gives the host of a plan index (process cells and guests alike). */
void util__host_mac(unsigned char mac[6], int index);

/* KVM_CREATE_VM on an open /dev/kvm: the VM's fd or -errno. It may fail with
 * EINTR if a signal lands during setup; retried a few times, never forever. */
int util__kvm_create_vm(int kvm_fd);

#endif /* LS_UTIL_H */
