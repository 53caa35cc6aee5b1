# GPU tests (label gpu): tests/gpu/test_*.cu, built where the CUDA backend is (HW1_HAVE_CUDA). Each compares the
# CUDA backend with the CPU one (test_gpu_probe, which checks what "no GPU" means, runs on any machine). Every test case is its own ctest entry gpu.<program>.<case> with a 180 s timeout,
# so one entry fits well inside a lent device's 10-minute command; without a GPU each exits 77 (Skipped). The
# programs test_gpu_train drives are found at run time ($HW1_BIN_DIR, or beside / ../examples relative to the test
# program), so the suite also runs from a copied build tree (scripts/gpu-check.sh).
if(NOT HW1_HAVE_CUDA)
  return()
endif()
file(GLOB HW1_GPU_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.cu)
foreach(src IN LISTS HW1_GPU_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE hw1::cuda hw1::data Boost::unit_test_framework)
  target_compile_definitions(${name} PRIVATE BOOST_TEST_DYN_LINK BOOST_TEST_NO_MAIN)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fopenmp -Xcudafe=--diag_suppress=20012>)
  file(STRINGS ${src} case_lines REGEX "^BOOST_AUTO_TEST_CASE\\(")
  foreach(line IN LISTS case_lines)
    string(REGEX REPLACE "^BOOST_AUTO_TEST_CASE\\(([A-Za-z0-9_]+).*" "\\1" case "${line}")
    add_test(NAME gpu.${name}.${case} COMMAND ${name} --run_test=${case})
    set_tests_properties(gpu.${name}.${case} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endforeach()
if(TARGET test_gpu_train)
  add_dependencies(test_gpu_train hw1-train-segmenter hw1-train-classifier hw1-predict)
endif()
