#include "elfsym.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The uprobe API wants a file offset; symbols hold virtual addresses. The
 * section containing the address converts one into the other (exec: only
 * code sections, for function symbols). */
static uint64_t vaddr_to_off(Elf *elf, uint64_t va, bool exec)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		if (exec && !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		if (va >= sh.sh_addr && va < sh.sh_addr + sh.sh_size)
			return va - sh.sh_addr + sh.sh_offset;
	}
	return 0;
}

static int scan_table(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const char *const *names,
		      size_t n, struct lw_elf_func *funcs)
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
			if (!funcs[k].off && strcmp(name, names[k]) == 0) {
				funcs[k].off = vaddr_to_off(elf, sym.st_value, true);
				funcs[k].size = sym.st_size;
				found += funcs[k].off != 0;
			}
		}
	}
	return (int)found;
}

static Elf_Scn *section_named(Elf *elf, const char *want, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh->sh_name);
		if (name && strcmp(name, want) == 0)
			return scn;
	}
	return NULL;
}

static bool read_at(int fd, uint64_t off, void *buf, size_t n)
{
	return off && pread(fd, buf, n, (off_t)off) == (ssize_t)n;
}

/*
 * Go's build info: ".go.buildinfo" starts with "\xff Go buildinf:", the
 * pointer size and a flags byte. Since Go 1.18 (flag 2) the version string
 * follows inline at 32, length-prefixed (varint); before, the word at 16
 * points to runtime.buildVersion, a string header {data, len}.
 */
static void go_buildinfo(Elf *elf, int fd, struct lw_elf_info *info)
{
	unsigned char h[48];
	char v[sizeof(info->go_version)] = "";
	GElf_Shdr sh;
	Elf_Scn *scn = section_named(elf, ".go.buildinfo", &sh);

	if (!scn || sh.sh_type == SHT_NOBITS || !read_at(fd, sh.sh_offset, h, sizeof(h)) ||
	    memcmp(h, "\xff Go buildinf:", 14) != 0)
		return;
	info->go = true;
	if (h[15] & 2) {
		size_t len = h[32], at = 33;

		if (len & 0x80) /* a two-byte varint: never for a version */
			return;
		if (len >= sizeof(v) || !read_at(fd, sh.sh_offset + at, v, len))
			return;
		v[len] = 0;
	} else if (h[14] == 8) {
		uint64_t ptr, hdr[2];

		memcpy(&ptr, h + 16, 8);
		if (!read_at(fd, vaddr_to_off(elf, ptr, false), hdr, sizeof(hdr)) ||
		    hdr[1] >= sizeof(v) ||
		    !read_at(fd, vaddr_to_off(elf, hdr[0], false), v, hdr[1]))
			return;
		v[hdr[1]] = 0;
	} else {
		return;
	}
	snprintf(info->go_version, sizeof(info->go_version), "%s", v);
	if (sscanf(v, "go%d.%d", &info->go_major, &info->go_minor) != 2)
		info->go_major = info->go_minor = 0;
}

int lw_elf_funcs(const char *path, const char *const *names, size_t n, struct lw_elf_func *funcs,
		 struct lw_elf_info *info)
{
	struct lw_elf_info dummy;
	GElf_Ehdr eh;
	Elf *elf;
	Elf_Scn *scn = NULL;
	int fd, found = 0;

	memset(funcs, 0, n * sizeof(*funcs));
	info = info ? info : &dummy;
	memset(info, 0, sizeof(*info));
	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		if (elf)
			elf_end(elf);
		close(fd);
		errno = ENOEXEC;
		return -1;
	}
	info->machine = eh.e_machine;
	/* exported symbols first: a stripped binary still has .dynsym */
	for (int pass = 0; pass < 2; pass++) {
		scn = NULL;
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh))
				continue;
			if (sh.sh_type == SHT_SYMTAB)
				info->has_symtab = true;
			if (sh.sh_type == (pass == 0 ? SHT_DYNSYM : SHT_SYMTAB))
				found += scan_table(elf, scn, &sh, names, n, funcs);
		}
	}
	go_buildinfo(elf, fd, info);
	elf_end(elf);
	close(fd);
	return found;
}

int lw_elf_func_offsets(const char *path, const char *const *names, size_t n, uint64_t *offs)
{
	struct lw_elf_func *f = calloc(n ? n : 1, sizeof(*f));
	int found;

	if (!f)
		return -1;
	found = lw_elf_funcs(path, names, n, f, NULL);
	for (size_t i = 0; i < n; i++)
		offs[i] = found < 0 ? 0 : f[i].off;
	free(f);
	return found;
}

/* Decoding, not scanning for the byte: 0xc3 is as often part of another
 * instruction (an immediate, a ModRM byte) as a return. */
int lw_elf_ret_offsets(const char *path, int machine, uint64_t off, uint64_t size, uint64_t *out,
		       int max)
{
	cs_arch arch;
	cs_mode mode;
	csh h;
	cs_insn *insn;
	unsigned char *code;
	size_t count;
	int fd, n = 0;

	if (machine == EM_X86_64) {
		arch = CS_ARCH_X86;
		mode = CS_MODE_64;
	} else if (machine == EM_AARCH64) {
		arch = CS_ARCH_ARM64;
		mode = CS_MODE_ARM;
	} else {
		errno = ENOTSUP;
		return -1;
	}
	if (!size || size > (16u << 20)) {
		errno = EINVAL;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	code = malloc(size);
	if (!code || !read_at(fd, off, code, size)) {
		free(code);
		close(fd);
		errno = EIO;
		return -1;
	}
	close(fd);
	if (cs_open(arch, mode, &h) != CS_ERR_OK) {
		free(code);
		errno = ENOTSUP;
		return -1;
	}
	/* the address is the file offset: what the uprobe wants */
	count = cs_disasm(h, code, size, off, 0, &insn);
	for (size_t i = 0; i < count && n < max; i++) {
		bool ret = machine == EM_X86_64 ? insn[i].id == X86_INS_RET
						: insn[i].id == ARM64_INS_RET;

		if (ret)
			out[n++] = insn[i].address;
	}
	if (count)
		cs_free(insn, count);
	cs_close(&h);
	free(code);
	if (count == 0) {
		errno = EILSEQ;
		return -1;
	}
	return n;
}

int lw_file_contains(const char *path, const char *const *needles, size_t n)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC), hit = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_size <= 0) {
		close(fd);
		return -1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < n && hit < 0; i++)
		if (memmem(p, (size_t)st.st_size, needles[i], strlen(needles[i])))
			hit = (int)i;
	munmap(p, (size_t)st.st_size);
	return hit;
}
