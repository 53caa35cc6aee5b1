# The programs on PyTorch .pth files (tests/pth/pth_check.cpp): hw1-convert, hw1-forward, the trainers'
# --init-weights, hw1-predict. Only when the examples are built (HW1_BUILD_EXAMPLES). The reader itself is
# tests/core/test_pth.cpp; the parity of networks loaded from .pth files is tests/parity (parity.pth.*).
set(_hw1_pth_tools hw1-convert hw1-forward hw1-predict hw1-make-data hw1-train-classifier hw1-train-segmenter)
hw1_all_targets(_hw1_pth_ok ${_hw1_pth_tools})
if(_hw1_pth_ok)
  add_executable(pth_check ${CMAKE_CURRENT_LIST_DIR}/pth_check.cpp)
  target_link_libraries(pth_check PRIVATE hw1::hw1 hw1_build_flags hw1_test_main)
  target_include_directories(pth_check PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
  target_compile_definitions(pth_check PRIVATE
    HW1_CONVERT="$<TARGET_FILE:hw1-convert>" HW1_FORWARD="$<TARGET_FILE:hw1-forward>"
    HW1_PREDICT="$<TARGET_FILE:hw1-predict>" HW1_MAKE_DATA="$<TARGET_FILE:hw1-make-data>"
    HW1_TRAIN_CLASSIFIER="$<TARGET_FILE:hw1-train-classifier>" HW1_TRAIN_SEGMENTER="$<TARGET_FILE:hw1-train-segmenter>")
  add_dependencies(pth_check ${_hw1_pth_tools})
  set_property(TARGET pth_check PROPERTY HW1_TEST_NEEDS needs_torch)
  hw1_add_boost_test(pth.programs pth_check LABELS pth)
  # Two torchvision checkpoints (~700 MB) and two trainer runs: one such case on the disk at a time.
  set_tests_properties(pth.programs.needs_torch PROPERTIES RESOURCE_LOCK hw1_disk)
endif()
