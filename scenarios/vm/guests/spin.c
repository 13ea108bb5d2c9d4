/* A CPU-bound guest: `run "N"` rounds of an integer hash (default 200
 * million), then the virtual time they took. Its virtual time is the time its
 * vCPU ran: the same alone and next to a host CPU hog. */
#include "ls.h"

int main(void)
{
	char arg[32];
	uint64_t rounds, start, elapsed, x = 0x9e3779b97f4a7c15ull;

	ls_arg(arg, sizeof arg);
	rounds = arg[0] != '\0' ? (uint64_t)ls_atol(arg) : 200000000ull;
	start = ls_now();
	for (uint64_t i = 0; i < rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	elapsed = ls_now() - start;
	ls_printf("spin rounds=%lu elapsed_ns=%lu check=%lx\n", rounds, elapsed, x & 0xffff);
	return 0;
}
