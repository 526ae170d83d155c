/*
 * Unit tests for user/capture/elfsym: function offsets and sizes from a real
 * ELF file (this test's own executable), and the return instructions of a
 * function found by decoding, not by looking for the byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/elfsym.h"

/* a function of this file, found in its symbol table */
__attribute__((noinline)) int lw_test_target(int x)
{
	return x * 3 + 1;
}

static void test_funcs_of_self(void **state)
{
	const char *names[] = {"lw_test_target", "no_such_function_here", "main"};
	struct lw_elf_func f[3];
	struct lw_elf_info info;
	int n = lw_elf_funcs("/proc/self/exe", names, 3, f, &info);

	assert_int_equal(n, 2);
	assert_true(f[0].off > 0 && f[0].size > 0);
	assert_int_equal(f[1].off, 0);
	assert_true(f[2].off > 0);
	assert_true(info.has_symtab);
	assert_false(info.go);
	assert_true(info.machine == EM_X86_64 || info.machine == EM_AARCH64);
	/* not ELF */
	assert_int_equal(lw_elf_funcs("/proc/self/cmdline", names, 3, f, NULL), -1);
}

static char *write_code(const void *code, size_t n)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/lw-test-elfsym.XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "wb");
	fwrite(code, 1, n, f);
	fclose(f);
	return path;
}

static void test_rets_x86(void **state)
{
	/* 16 bytes of padding (offset 0 is "no function"), then:
	 *   mov eax, 0xc3c3c3c3   b8 c3 c3 c3 c3   (four 0xc3 that are no RET)
	 *   test eax, eax         85 c0
	 *   je +1                 74 01
	 *   ret                   c3              <- 16 + 9
	 *   add eax, 1            83 c0 01
	 *   ret                   c3              <- 16 + 13 */
	unsigned char code[16 + 14] = {0};
	const unsigned char body[] = {0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0x85, 0xc0,
				      0x74, 0x01, 0xc3, 0x83, 0xc0, 0x01, 0xc3};
	uint64_t rets[8];
	char *path;
	int n;

	memcpy(code + 16, body, sizeof(body));
	path = write_code(code, sizeof(code));
	n = lw_elf_ret_offsets(path, EM_X86_64, 16, sizeof(body), rets, 8);
	assert_int_equal(n, 2);
	assert_int_equal(rets[0], 16 + 9);
	assert_int_equal(rets[1], 16 + 13);
	/* at most max */
	assert_int_equal(lw_elf_ret_offsets(path, EM_X86_64, 16, sizeof(body), rets, 1), 1);
	/* past the end of the file, an unknown machine */
	assert_int_equal(lw_elf_ret_offsets(path, EM_X86_64, 16, 4096, rets, 8), -1);
	assert_int_equal(lw_elf_ret_offsets(path, EM_RISCV, 16, sizeof(body), rets, 8), -1);
	unlink(path);
}

static void test_rets_arm64(void **state)
{
	/* add x0, x0, #1 (91000400); ret (d65f03c0); ret x1 is "ret" too */
	const unsigned char body[] = {0x00, 0x04, 0x00, 0x91, 0xc0, 0x03, 0x5f, 0xd6};
	unsigned char code[8 + sizeof(body)] = {0};
	uint64_t rets[4];
	char *path;

	memcpy(code + 8, body, sizeof(body));
	path = write_code(code, sizeof(code));
	assert_int_equal(lw_elf_ret_offsets(path, EM_AARCH64, 8, sizeof(body), rets, 4), 1);
	assert_int_equal(rets[0], 8 + 4);
	unlink(path);
}

static void test_file_contains(void **state)
{
	const char text[] = "xxxx OpenSSL 3.0.15 yyyy";
	const char *const needles[] = {"BoringSSL", "OpenSSL 3.", "GnuTLS"};
	char *path = write_code(text, sizeof(text));

	assert_int_equal(lw_file_contains(path, needles, 3), 1);
	assert_int_equal(lw_file_contains(path, needles, 1), -1);
	unlink(path);
	assert_int_equal(lw_file_contains("/nonexistent/file", needles, 3), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_funcs_of_self),
		cmocka_unit_test(test_rets_x86),
		cmocka_unit_test(test_rets_arm64),
		cmocka_unit_test(test_file_contains),
	};

	return cmocka_run_group_tests_name("elfsym", tests, NULL, NULL);
}
