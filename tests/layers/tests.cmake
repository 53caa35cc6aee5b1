# The GEMM-based kernels once more on Eigen's GEMM (HW1_BLAS=0): what a machine without OpenBLAS runs.
foreach(name test_conv2d_kernel test_conv_transpose2d_kernel test_linear_kernel)
  add_test(NAME layers.${name}.eigen COMMAND ${name})
  set_tests_properties(layers.${name}.eigen PROPERTIES LABELS layers ENVIRONMENT HW1_BLAS=0)
endforeach()
