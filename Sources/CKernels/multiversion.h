/* Plain C loops compiled once per instruction set and chosen at load time (ifunc): the
 * compiler vectorises them 16 wide on AVX-512, 8 on AVX2, 4 on the x86-64 baseline. Files
 * using this also turn multiply-add contraction off, so that every version rounds like the
 * baseline one (AVX-512 and AVX2 bring FMA) and the results do not depend on the CPU. */
#ifndef MEGAFS_MULTIVERSION_H
#define MEGAFS_MULTIVERSION_H
#if defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define MFS_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MFS_MULTIVERSION
#endif
#endif
