#include "ckernels.h"
#include <cpuid.h>

mfs_cpu_features mfs_detect_cpu(void) {
    mfs_cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    int osxsave = (c >> 27) & 1;
    f.fma = (c >> 12) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    int ymm = (xcr0 & 0x6) == 0x6;
    int zmm = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = ymm && ((b >> 5) & 1);
    f.fma = f.fma && ymm;
    f.avx512f = zmm && ((b >> 16) & 1);
    f.avx512bw = zmm && ((b >> 30) & 1);
    f.avx512vnni = zmm && ((c >> 11) & 1);
    unsigned a1, b1, c1, d1;
    if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512bf16 = zmm && ((a1 >> 5) & 1);
    return f;
}
