/*
 * The built-in rule pack, embedded so that `leakwatch scan` works from any
 * directory. The path is relative to the repository root, the compiler's
 * working directory; the trailing NUL lets the pack be used as a C string.
 */
#include <stddef.h>

#include "classify/rules.h"

__asm__(".pushsection .rodata\n"
	".global lw_rules_builtin_yaml\n"
	".type lw_rules_builtin_yaml, %object\n"
	".balign 16\n"
	"lw_rules_builtin_yaml:\n"
	".incbin \"policies/rules/builtin.yaml\"\n"
	".global lw_rules_builtin_yaml_end\n"
	"lw_rules_builtin_yaml_end:\n"
	".byte 0\n"
	".size lw_rules_builtin_yaml, . - lw_rules_builtin_yaml\n"
	".popsection\n");

extern const char lw_rules_builtin_yaml_end[];

size_t lw_rules_builtin_size(void)
{
	return (size_t)(lw_rules_builtin_yaml_end - lw_rules_builtin_yaml);
}
