/*
 * elf.c — loading a guest image: a static x86-64 ELF executable whose
 * PT_LOAD segments lie between LS_GUEST_IMAGE_GPA and the stack (the guest
 * SDK's linker script, ffi/guest/guest.ld, makes exactly that).
 */
#include "vmm.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

/* Room left below the top of guest memory for the stacks (at least). */
#define ELF_STACK_BYTES (1ull << 20)

int elf__load(struct vmm_vm *vm, const uint8_t *image, uint64_t length)
{
	const Elf64_Ehdr *header = (const Elf64_Ehdr *)image;
	uint64_t stacks = (uint64_t)vm->vcpu_count * LS_GUEST_STACK_BYTES;
	uint64_t top = vm->mem_size - (stacks > ELF_STACK_BYTES ? stacks : ELF_STACK_BYTES);
	int loaded = 0;

	if (length < sizeof *header || memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 ||
	    header->e_ident[EI_CLASS] != ELFCLASS64 || header->e_ident[EI_DATA] != ELFDATA2LSB ||
	    header->e_machine != EM_X86_64 || header->e_type != ET_EXEC ||
	    header->e_phentsize != sizeof(Elf64_Phdr) || header->e_phoff > length ||
	    (uint64_t)header->e_phnum * sizeof(Elf64_Phdr) > length - header->e_phoff)
		return -ENOEXEC;
	for (int i = 0; i < header->e_phnum; i++) {
		const Elf64_Phdr *segment = (const Elf64_Phdr *)(image + header->e_phoff) + i;
		uint8_t *target;

		if (segment->p_type != PT_LOAD || segment->p_memsz == 0)
			continue;
		if (segment->p_filesz > segment->p_memsz || segment->p_offset > length ||
		    segment->p_filesz > length - segment->p_offset ||
		    segment->p_vaddr < LS_GUEST_IMAGE_GPA || segment->p_vaddr > top || segment->p_memsz > top - segment->p_vaddr)
			return -ENOEXEC;
		target = vm__guest(vm, segment->p_vaddr, segment->p_memsz);
		memcpy(target, image + segment->p_offset, segment->p_filesz);
		memset(target + segment->p_filesz, 0, segment->p_memsz - segment->p_filesz);
		loaded++;
	}
	if (loaded == 0 || header->e_entry < LS_GUEST_IMAGE_GPA || header->e_entry >= top)
		return -ENOEXEC;
	vm->entry = header->e_entry;
	return 0;
}
