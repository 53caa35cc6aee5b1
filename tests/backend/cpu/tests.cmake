# The GEMM-based kernels once more on Eigen's GEMM (HW1_BLAS=0, and HW1_PGEMM=0: no packed GEMM either): what a
# machine without OpenBLAS or AVX-512 runs.
# Their packed-GEMM cases (label needs_avx512) get entries of their own, reported Skipped here (HW1_PGEMM=0).
foreach(name test_conv2d test_conv_transpose2d test_linear)
  hw1_add_boost_test(backend.cpu.${name}.eigen ${name} LABELS backend.cpu ENV HW1_BLAS=0 HW1_PGEMM=0)
endforeach()
# The 3x3 stride-1 convolutions once more without Winograd (HW1_WINOGRAD=0): the packed im2col path they take
# where Winograd does not apply or is off.
hw1_add_boost_test(backend.cpu.test_conv2d.direct test_conv2d LABELS backend.cpu ENV HW1_WINOGRAD=0)
hw1_add_boost_test(backend.cpu.test_conv_select.direct test_conv_select LABELS backend.cpu ENV HW1_WINOGRAD=0)
