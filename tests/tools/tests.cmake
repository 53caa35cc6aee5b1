# End-to-end tests of the HW1 programs (hw1-predict, hw1-miou, hw1-tsne, hw1-make-data): one Boost.Test driver
# runs them on small generated data. Only when the examples are built (HW1_BUILD_EXAMPLES).
set(_hw1_tools hw1-predict hw1-miou hw1-tsne hw1-make-data)
hw1_all_targets(_hw1_tools_ok ${_hw1_tools})
if(_hw1_tools_ok)
  add_executable(hw1_tools_check ${CMAKE_CURRENT_LIST_DIR}/tools_check.cpp)
  target_link_libraries(hw1_tools_check PRIVATE hw1::data hw1_build_flags Boost::unit_test_framework)
  target_include_directories(hw1_tools_check PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
  target_compile_definitions(hw1_tools_check PRIVATE BOOST_TEST_DYN_LINK
    HW1_TOOLS_WORK="${CMAKE_CURRENT_BINARY_DIR}/tools-work"
    HW1_PREDICT="$<TARGET_FILE:hw1-predict>" HW1_MIOU="$<TARGET_FILE:hw1-miou>"
    HW1_TSNE="$<TARGET_FILE:hw1-tsne>" HW1_MAKE_DATA="$<TARGET_FILE:hw1-make-data>")
  add_dependencies(hw1_tools_check ${_hw1_tools})
  # `setup` writes the data and checkpoints the other cases read (a ctest fixture, so -j and -R work).
  foreach(case IN ITEMS setup csv_format_and_single_model ensemble_vote masks_colours_sizes_names miou_hand_made
                        refuses_and_errors tsne_small make_data cli_refusals predict_num_classes_mismatch)
    add_test(NAME tools.${case} COMMAND hw1_tools_check --run_test=${case})
    set_tests_properties(tools.${case} PROPERTIES LABELS tools RESOURCE_LOCK hw1_tools_work)
    if(case STREQUAL "setup")
      set_tests_properties(tools.${case} PROPERTIES FIXTURES_SETUP hw1_tools)
    else()
      set_tests_properties(tools.${case} PROPERTIES FIXTURES_REQUIRED hw1_tools)
    endif()
  endforeach()
  # The checkpoints (seven full networks, ~1.3 GB) go once every case that reads them has run.
  add_test(NAME tools.cleanup COMMAND ${CMAKE_COMMAND} -E rm -rf ${CMAKE_CURRENT_BINARY_DIR}/tools-work/ckpt)
  set_tests_properties(tools.cleanup PROPERTIES LABELS tools FIXTURES_CLEANUP hw1_tools RESOURCE_LOCK hw1_tools_work)
endif()
