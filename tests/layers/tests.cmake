# The GEMM-based kernels once more on Eigen's GEMM (HW1_BLAS=0, and HW1_PGEMM=0: no packed GEMM either): what a
# machine without OpenBLAS or AVX-512 runs.
# Their packed-GEMM cases (label needs_avx512) get entries of their own, reported Skipped here (HW1_PGEMM=0).
foreach(name test_conv2d_kernel test_conv_transpose2d_kernel test_linear_kernel)
  hw1_add_boost_test(layers.${name}.eigen ${name} LABELS layers ENV HW1_BLAS=0 HW1_PGEMM=0)
endforeach()
# The 3x3 stride-1 convolutions once more without Winograd (HW1_WINOGRAD=0): the packed im2col path they take
# where Winograd does not apply or is off.
hw1_add_boost_test(layers.test_conv2d_kernel.direct test_conv2d_kernel LABELS layers ENV HW1_WINOGRAD=0)
