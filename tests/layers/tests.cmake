# The GEMM-based kernels once more on Eigen's GEMM (HW1_BLAS=0, and HW1_PGEMM=0: no packed GEMM either): what a
# machine without OpenBLAS or AVX-512 runs.
foreach(name test_conv2d_kernel test_conv_transpose2d_kernel test_linear_kernel)
  add_test(NAME layers.${name}.eigen COMMAND ${name})
  set_tests_properties(layers.${name}.eigen PROPERTIES LABELS layers ENVIRONMENT "HW1_BLAS=0;HW1_PGEMM=0")
endforeach()
# The 3x3 stride-1 convolutions once more without Winograd (HW1_WINOGRAD=0): the packed im2col path they take
# where Winograd does not apply or is off.
add_test(NAME layers.test_conv2d_kernel.direct COMMAND test_conv2d_kernel)
set_tests_properties(layers.test_conv2d_kernel.direct PROPERTIES LABELS layers ENVIRONMENT "HW1_WINOGRAD=0")
