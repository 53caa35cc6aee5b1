# test_fit drives the real trainers in its `programs` suite (disabled in the plain run, one ctest entry per case
# here, so they run in parallel and report separately). Without the examples only the in-process tests run.
if(TARGET test_fit AND TARGET hw1-train-classifier AND TARGET hw1-train-segmenter)
  target_compile_definitions(test_fit PRIVATE HW1_TRAIN_CLASSIFIER="$<TARGET_FILE:hw1-train-classifier>"
                                              HW1_TRAIN_SEGMENTER="$<TARGET_FILE:hw1-train-segmenter>")
  add_dependencies(test_fit hw1-train-classifier hw1-train-segmenter)
  if(TARGET hw1-train-classifier-cuda)  # the trainers have their --device cuda path
    target_compile_definitions(test_fit PRIVATE HW1_TRAINERS_WITH_CUDA)
  endif()
  foreach(case IN ITEMS classifier_ctrl_c_resume segmenter_ctrl_c_resume segmenter_learns deeplabv3_aux_head bad_input cli_ranges cli_nothing_written)
    add_test(NAME train.programs.${case} COMMAND test_fit --run_test=programs/${case})
    # Each case writes full-size checkpoints (up to ~1.5 GB): they take the disk lock in turn with the parity cases.
    set_tests_properties(train.programs.${case} PROPERTIES LABELS "train;programs" TIMEOUT 600 RESOURCE_LOCK hw1_disk)
  endforeach()
endif()
