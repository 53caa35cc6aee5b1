# GPU tests (label gpu): tests/gpu/test_*.cu, built where the CUDA backend is (HW1_HAVE_CUDA). Each compares the
# CUDA backend with the CPU one; without a usable device it exits 77, which ctest reports as skipped.
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
  add_test(NAME gpu.${name} COMMAND ${name})
  set_tests_properties(gpu.${name} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77)
endforeach()
# test_gpu_train also drives the programs (--device cuda against --device cpu).
if(TARGET test_gpu_train AND TARGET hw1-train-segmenter AND TARGET hw1-train-classifier AND TARGET hw1-predict)
  target_compile_definitions(test_gpu_train PRIVATE HW1_TRAIN_SEGMENTER="$<TARGET_FILE:hw1-train-segmenter>"
                                                    HW1_TRAIN_CLASSIFIER="$<TARGET_FILE:hw1-train-classifier>"
                                                    HW1_PREDICT="$<TARGET_FILE:hw1-predict>")
  add_dependencies(test_gpu_train hw1-train-segmenter hw1-train-classifier hw1-predict)
  set_tests_properties(gpu.test_gpu_train PROPERTIES TIMEOUT 1200)
endif()
