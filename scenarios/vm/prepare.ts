// Prepares the guest of the backend qemu scenarios in this folder: Debian's cloud kernel (apt-get download
// + dpkg -x, once) and a busybox initramfs, in /var/cache/livestack/guest/ (or the directory given).
//   npx tsx scenarios/vm/prepare.ts [DIR]
// Needs root, apt with the Debian archive reachable, and busybox-static.
import { prepareGuest } from '../../runtime/live/qemu-guest.ts';

const cacheDir = process.argv[2];
const started = performance.now();
const guest = prepareGuest(cacheDir === undefined ? {} : { cacheDir });
process.stdout.write(`kernel ${guest.kernel} (${guest.kernelVersion})\ninitrd ${guest.initrd}\nin ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
