# The GEMM-based kernels once more on Eigen's GEMM (HW1_BLAS=0, and HW1_PGEMM=0: no packed GEMM either): what a
# machine without OpenBLAS or AVX-512 runs.
foreach(name test_conv2d_kernel test_conv_transpose2d_kernel test_linear_kernel)
  add_test(NAME layers.${name}.eigen COMMAND ${name})
  set_tests_properties(layers.${name}.eigen PROPERTIES LABELS layers ENVIRONMENT "HW1_BLAS=0;HW1_PGEMM=0")
endforeach()
