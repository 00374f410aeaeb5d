#ifndef MEGAFS_CKERNELS_H
#define MEGAFS_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/// CPU features detected at run time (CPUID), so one binary picks its kernels.
typedef struct {
    int avx2;
    int fma;
    int avx512f;
    int avx512bw;
    int avx512vnni;
    int avx512bf16;
} mfs_cpu_features;

mfs_cpu_features mfs_detect_cpu(void);

#include "conv3x3.h"
#include "convtaps.h"
#include "convtranspose.h"
#include "sgemm_nt.h"
#include "sgemm_smallm.h"
#include "winograd.h"
#include "blur.h"
#include "col2im.h"
#include "im2col.h"
#include "gemv.h"
#include "softerosion.h"
#include "workerpool.h"

#endif
