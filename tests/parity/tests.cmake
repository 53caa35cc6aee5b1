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
foreach(case IN ITEMS "resnet101;50;11" "fcn32s;7;12" "deeplabv3;7;13" "resnet50;10;25" "deeplabv3_resnet50;5;26")
  list(GET case 0 model)
  list(GET case 1 k)
  list(GET case 2 seed)
  foreach(mode IN ITEMS eval train)
    add_test(NAME parity.${model}.${mode}
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_parity.sh ${HW1_TORCH_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/make_reference.py
                     $<TARGET_FILE:parity_check> $<TARGET_FILE:hw1-forward> ${CMAKE_BINARY_DIR}/parity/${model}-${mode}
                     ${model} ${k} ${HW1_PARITY_SHAPE} ${seed} ${mode})
    set_tests_properties(parity.${model}.${mode} PROPERTIES LABELS "parity" RESOURCE_LOCK hw1_disk SKIP_RETURN_CODE 77)
  endforeach()
endforeach()
# Cases at sizes where the selector takes each CPU algorithm, 2 threads (the choices depend on the thread count), with
# the algorithms asserted (parity_check.cpp, hw1-forward --trace-algorithms): HW1_PARITY_EXPECT for the float32 run
# with gradients, HW1_PARITY_EXPECT_INFERENCE for the inference run of eval cases. Winograd F(4x4) serves inference
# only (winograd4.hpp): the eval cases show it taken there and kept out of the pass with gradients, the train
# cases keep it out of training. F(2x2) forward, input and weight gradients, the packed 1x1 gradients and the dense
# 2x2-map convolutions each run in at least one case.
set(_hw1_no_f4 "fwd_f4=0 dx_f4=0 fwd_f2>0 dx_f2>0 dw_f2>0")
function(hw1_parity_case name model k shape seed mode expect expect_inference)
  set(env "OMP_NUM_THREADS=2" "HW1_PARITY_EXPECT=${expect}")
  if(expect_inference)
    list(APPEND env "HW1_PARITY_EXPECT_INFERENCE=${expect_inference}")
  endif()
  list(APPEND env ${ARGN})
  add_test(NAME parity.${name}
           COMMAND ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/run_parity.sh ${HW1_TORCH_PYTHON}
                   ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/make_reference.py $<TARGET_FILE:parity_check>
                   $<TARGET_FILE:hw1-forward> ${CMAKE_BINARY_DIR}/parity/${name} ${model} ${k} ${shape} ${seed} ${mode})
  set_tests_properties(parity.${name} PROPERTIES LABELS "parity" RESOURCE_LOCK hw1_disk SKIP_RETURN_CODE 77 ENVIRONMENT "${env}")
endfunction()
hw1_parity_case(resnet101.train.dense2x2 resnet101 50 4,3,32,32 15 train "fwd_dense2x2>0 dx_dense2x2>0 dw_dense2x2>0" "")
hw1_parity_case(resnet101.eval.f4 resnet101 50 2,3,128,128 16 eval "${_hw1_no_f4} dx_packed1x1>0 dw_packed1x1>0" "fwd_f4>0")
hw1_parity_case(fcn32s.eval.f4 fcn32s 7 4,3,70,45 17 eval "${_hw1_no_f4}" "fwd_f4>0")
hw1_parity_case(fcn32s.train.f4 fcn32s 7 4,3,70,45 18 train "${_hw1_no_f4}" "")
hw1_parity_case(deeplabv3.eval.f4 deeplabv3 7 1,3,256,256 19 eval "${_hw1_no_f4}" "fwd_f4>0")
hw1_parity_case(deeplabv3.train.f4 deeplabv3 7 2,3,256,256 14 train "${_hw1_no_f4}" "")
# F(4x4) in training on request (HW1_WINOGRAD4=train): outside the default, still held to the parity rule.
hw1_parity_case(fcn32s.train.f4-opt-in fcn32s 7 4,3,70,45 18 train "fwd_f4>0 dx_f4>0" "" "HW1_WINOGRAD4=train")
# The same parity with the weights as PyTorch writes them (torch.save at test time, tests/parity/make_reference.py
# --pth): both formats, float16, views with odd strides, a checkpoint dict, DataParallel's prefixes, each read by
# hw1-forward straight from the .pth (hw1/core/pth.hpp). Inference only, small inputs: these cases check loading.
function(hw1_parity_pth_case name model k shape seed spec)
  add_test(NAME parity.pth.${name}
           COMMAND ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/run_parity.sh ${HW1_TORCH_PYTHON}
                   ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/make_reference.py $<TARGET_FILE:parity_check>
                   $<TARGET_FILE:hw1-forward> ${CMAKE_BINARY_DIR}/parity/pth-${name} ${model} ${k} ${shape} ${seed} eval)
  set_tests_properties(parity.pth.${name} PROPERTIES LABELS "parity;pth" RESOURCE_LOCK hw1_disk SKIP_RETURN_CODE 77
                       ENVIRONMENT "HW1_PARITY_PTH=${spec};HW1_PARITY_WEIGHTS=weights.pth;HW1_PARITY_INFERENCE_ONLY=1")
endfunction()
hw1_parity_pth_case(resnet101.zip.f32.transposed resnet101 1000 2,3,48,40 21 "zip,float32,transposed")
hw1_parity_pth_case(resnet101.legacy.f16.wrapped resnet101 50 2,3,40,36 22 "legacy,float16,wrapped")
hw1_parity_pth_case(fcn32s.legacy.f32.module fcn32s 7 1,3,64,48 23 "legacy,float32,module")
hw1_parity_pth_case(deeplabv3.zip.f16.transposed deeplabv3 7 1,3,64,64 24 "zip,float16,transposed,module")
hw1_parity_pth_case(resnet50.zip.f32 resnet50 10 2,3,48,40 27 "zip,float32")
hw1_parity_pth_case(deeplabv3_resnet50.legacy.f16.module deeplabv3_resnet50 5 1,3,64,64 28 "legacy,float16,module")
# resnet50 and deeplabv3_resnet50 share the blocks of the 101-layer presets; the selector's cases at their sizes:
hw1_parity_case(resnet50.train.dense2x2 resnet50 10 4,3,32,32 29 train "fwd_dense2x2>0 dx_dense2x2>0 dw_dense2x2>0" "")
hw1_parity_case(deeplabv3_resnet50.eval.f4 deeplabv3_resnet50 5 1,3,256,256 30 eval "${_hw1_no_f4}" "fwd_f4>0")
