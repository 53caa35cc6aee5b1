# The trainers under mpirun, 2 ranks on this machine (tests/distributed/mpi_programs.cpp): one ctest entry per case.
# Where MPI or mpirun is missing, or the trainers are not built, one entry says so and reports Skipped.
# CI runs as root: OpenMPI refuses that unless both OMPI_ALLOW_RUN_AS_ROOT variables are set.
set(_hw1_mpi_cases sync_bn_equals_one_rank per_rank_bn_learns_and_resumes_with_one_rank one_rank_run_resumes_with_two
                   batch_must_divide_over_the_ranks a_bad_file_in_one_shard_stops_every_rank
                   ctrl_c_on_mpirun_leaves_a_resumable_run)
if(HW1_HAVE_MPI AND MPIEXEC_EXECUTABLE AND TARGET hw1-train-classifier AND TARGET hw1-train-segmenter)
  add_executable(hw1_mpi_programs ${CMAKE_CURRENT_LIST_DIR}/mpi_programs.cpp)
  target_link_libraries(hw1_mpi_programs PRIVATE hw1::data hw1_build_flags Boost::unit_test_framework)
  target_include_directories(hw1_mpi_programs PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
  target_compile_definitions(hw1_mpi_programs PRIVATE BOOST_TEST_DYN_LINK HW1_MPIEXEC="${MPIEXEC_EXECUTABLE}"
                                                      HW1_TRAIN_CLASSIFIER="$<TARGET_FILE:hw1-train-classifier>"
                                                      HW1_TRAIN_SEGMENTER="$<TARGET_FILE:hw1-train-segmenter>")
  add_dependencies(hw1_mpi_programs hw1-train-classifier hw1-train-segmenter)
  foreach(case IN LISTS _hw1_mpi_cases)
    add_test(NAME distributed.mpi.${case} COMMAND hw1_mpi_programs --run_test=mpi/${case})
    set_tests_properties(distributed.mpi.${case} PROPERTIES LABELS "distributed;mpi" TIMEOUT 600
      RESOURCE_LOCK hw1_disk ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")
  endforeach()
else()
  add_test(NAME distributed.mpi.unavailable
           COMMAND ${CMAKE_COMMAND} -E echo "no MPI (libopenmpi-dev, openmpi-bin) or no trainers in this build: the mpirun tests did not run")
  # cmake -E echo exits 0: make it the skip code
  set_tests_properties(distributed.mpi.unavailable PROPERTIES LABELS "distributed;mpi" SKIP_REGULAR_EXPRESSION "no MPI")
endif()
