# Parity with torchvision: a reference generator (PyTorch, float64, test time only) per model and mode, then
# parity_check running hw1-forward against it. Python with torch/torchvision: Debian's /usr/bin/python3.
if(NOT TARGET hw1-forward)
  message(STATUS "hw1: parity tests need the examples (HW1_BUILD_EXAMPLES=ON); skipped")
  return()
endif()
find_program(HW1_TORCH_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
add_executable(parity_check ${CMAKE_CURRENT_LIST_DIR}/parity_check.cpp)
target_link_libraries(parity_check PRIVATE hw1::hw1 hw1_build_flags Boost::unit_test_framework)
target_compile_definitions(parity_check PRIVATE BOOST_TEST_DYN_LINK)
set(HW1_PARITY_SHAPE "2,3,67,45" CACHE STRING "Input shape of the torchvision parity tests")
# One ctest entry per model and mode (tests/parity/run_parity.sh): reference, check, then the directory is
# removed if the case passed. The cases take the lock hw1_disk in turn (as do the trainers' end-to-end tests), so
# the run never holds more than one reference (~1.5 GB at most) on disk.
foreach(case IN ITEMS "resnet101;50;11" "fcn32s;7;12" "deeplabv3;7;13")
  list(GET case 0 model)
  list(GET case 1 k)
  list(GET case 2 seed)
  foreach(mode IN ITEMS eval train)
    add_test(NAME parity.${model}.${mode}
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_parity.sh ${HW1_TORCH_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/make_reference.py
                     $<TARGET_FILE:parity_check> $<TARGET_FILE:hw1-forward> ${CMAKE_BINARY_DIR}/parity/${model}-${mode}
                     ${model} ${k} ${HW1_PARITY_SHAPE} ${seed} ${mode})
    set_tests_properties(parity.${model}.${mode} PROPERTIES LABELS "parity" RESOURCE_LOCK hw1_disk)
  endforeach()
endforeach()
# One case at a size where the float 3x3 layers take Winograd F(4x4,3x3) (winograd4.hpp: 64+ tiles per thread,
# hence 2 threads here), forward and input gradient, in training mode: DeepLabv3 at 2x3x256x256.
add_test(NAME parity.deeplabv3.train.f4
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_parity.sh ${HW1_TORCH_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/make_reference.py
                 $<TARGET_FILE:parity_check> $<TARGET_FILE:hw1-forward> ${CMAKE_BINARY_DIR}/parity/deeplabv3-train-f4
                 deeplabv3 7 2,3,256,256 14 train)
set_tests_properties(parity.deeplabv3.train.f4 PROPERTIES LABELS "parity" RESOURCE_LOCK hw1_disk
                     ENVIRONMENT "OMP_NUM_THREADS=2")
