/* A CPU-bound guest: `run "ROUNDS [REPEAT]"` rounds of an integer hash
 * (default 200 million, once), then the virtual time they took, REPEAT times.
 * Its virtual time is the time its vCPU ran: the same alone and next to a host
 * CPU hog. */
#include "ls.h"

int main(void)
{
	char arg[48];
	const char *p = arg;
	uint64_t rounds = 200000000ull, repeat = 1, x = 0x9e3779b97f4a7c15ull;

	ls_arg(arg, sizeof arg);
	if (arg[0] != '\0')
		rounds = (uint64_t)ls_atol(arg);
	while (*p != '\0' && *p != ' ')
		p++;
	if (*p == ' ')
		repeat = (uint64_t)ls_atol(p);
	for (uint64_t r = 0; r < repeat; r++) {
		uint64_t start = ls_now(), elapsed;

		for (uint64_t i = 0; i < rounds; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		elapsed = ls_now() - start;
		ls_printf("spin rounds=%lu elapsed_ns=%lu check=%lx\n", rounds, elapsed, x & 0xffff);
	}
	return 0;
}
