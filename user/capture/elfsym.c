#include "elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

/* The uprobe API wants a file offset; symbols hold virtual addresses. The
 * section containing the address converts one into the other. */
static uint64_t vaddr_to_off(Elf *elf, uint64_t va)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		if (!(sh.sh_flags & SHF_EXECINSTR))
			continue;
		if (va >= sh.sh_addr && va < sh.sh_addr + sh.sh_size)
			return va - sh.sh_addr + sh.sh_offset;
	}
	return 0;
}

static int scan_table(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const char *const *names,
		      size_t n, uint64_t *offs)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count, found = 0;

	if (!data || !sh->sh_entsize)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, (int)i, &sym))
			continue;
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
		    !sym.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name)
			continue;
		for (size_t k = 0; k < n; k++) {
			if (!offs[k] && strcmp(name, names[k]) == 0) {
				offs[k] = vaddr_to_off(elf, sym.st_value);
				found += offs[k] != 0;
			}
		}
	}
	return (int)found;
}

int lw_elf_func_offsets(const char *path, const char *const *names, size_t n, uint64_t *offs)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	int fd, found = 0;

	memset(offs, 0, n * sizeof(*offs));
	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		if (elf)
			elf_end(elf);
		close(fd);
		errno = ENOEXEC;
		return -1;
	}
	/* exported symbols first: a stripped binary still has .dynsym */
	for (int pass = 0; pass < 2; pass++) {
		scn = NULL;
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh))
				continue;
			if (sh.sh_type == (pass == 0 ? SHT_DYNSYM : SHT_SYMTAB))
				found += scan_table(elf, scn, &sh, names, n, offs);
		}
	}
	elf_end(elf);
	close(fd);
	return found;
}
