/* The smallest guest: a line on the console, then exit 0. */
#include "ls.h"

int main(void)
{
	struct ls_guest_info info;

	ls_info(&info);
	ls_printf("hello from a LiveStack guest: %u MiB, virtual time %lu ns\n", (unsigned)(info.memory_bytes >> 20), ls_now());
	return 0;
}
