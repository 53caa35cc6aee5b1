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
foreach(case IN ITEMS "resnet101;50;11" "fcn32s;7;12" "deeplabv3;7;13")
  list(GET case 0 model)
  list(GET case 1 k)
  list(GET case 2 seed)
  foreach(mode IN ITEMS eval train)
    set(dir ${CMAKE_BINARY_DIR}/parity/${model}-${mode})
    add_test(NAME parity.reference.${model}.${mode}
             COMMAND ${HW1_TORCH_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/make_reference.py --model ${model}
                     --num-classes ${k} --shape ${HW1_PARITY_SHAPE} --seed ${seed} --mode ${mode} --out ${dir})
    set_tests_properties(parity.reference.${model}.${mode} PROPERTIES FIXTURES_SETUP parity_${model}_${mode}
                         LABELS "parity")
    add_test(NAME parity.${model}.${mode}
             COMMAND parity_check -- $<TARGET_FILE:hw1-forward> ${dir} ${model} ${k} ${mode})
    set_tests_properties(parity.${model}.${mode} PROPERTIES FIXTURES_REQUIRED parity_${model}_${mode}
                         LABELS "parity")
  endforeach()
endforeach()
