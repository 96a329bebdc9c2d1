# Small helpers shared by every folder's CMakeLists.txt.

# Where the GoogleTest executables (and the mpirun ones) make their scratch folders: tests/test_util.h makes one per
# process in $TEST_TMPDIR, removed when its tests pass; kept ones are in this folder, never in /tmp.
set(CG_TEST_TMPDIR "TEST_TMPDIR=${PROJECT_BINARY_DIR}/tests/tmp")

# cg_use_torch(target): link libtorch (and OpenMP, CG_WITH_OPENMP) and reuse the one precompiled <torch/torch.h>.
function(cg_use_torch tgt)
  target_link_libraries(${tgt} PUBLIC ${TORCH_LIBRARIES} ${CG_OPENMP_LIBS})
  target_precompile_headers(${tgt} REUSE_FROM cg_torch_pch)
endfunction()

# The GoogleTest executable behind cg_add_gtest and cg_add_gtest_group.
function(_cg_gtest_executable exe sources libs torch)
  add_executable(${exe} ${sources})
  target_link_libraries(${exe} PRIVATE ${libs} GTest::gtest GTest::gtest_main)
  if(torch)
    cg_use_torch(${exe})
  endif()
  target_compile_definitions(${exe} PRIVATE CG_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CG_BINARY_DIR="${PROJECT_BINARY_DIR}")
endfunction()

# cg_add_gtest(NAME SOURCES ... LIBS ... [TORCH] [LAUNCHER ...]): one GoogleTest executable registered with ctest,
# run through LAUNCHER's command when given (a fixture's folder: cg_add_fixture_dir).
function(cg_add_gtest name)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;LIBS;LABELS;LAUNCHER" ${ARGN})
  _cg_gtest_executable(${name} "${A_SOURCES}" "${A_LIBS}" "${A_TORCH}")
  add_test(NAME ${name} COMMAND ${A_LAUNCHER} $<TARGET_FILE:${name}> --gtest_brief=1)
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;${CG_TEST_TMPDIR}" LABELS "unit;${A_LABELS}")
endfunction()

# cg_add_gtest_group(EXE TESTS NAME SOURCE [NAME SOURCE ...] LIBS ... [TORCH] [LABELS ...]): several suites' files
# built as one executable EXE (one unity batch: a libtorch TU spends ~6 s loading the precompiled header and compiles
# torch's inline code again, docs/performance.md#build-time) and registered as one ctest test per file, NAME, that
# runs the GoogleTest suites that file defines (--gtest_filter). A suite defined in two of the files, or a file that
# defines none (TEST, TEST_F, TEST_P, TYPED_TEST or TYPED_TEST_P at the start of a line), stops the configure step;
# the test EXE_all_registered fails when the executable holds a test that none of the file tests runs.
function(cg_add_gtest_group exe)
  cmake_parse_arguments(A "TORCH" "" "TESTS;LIBS;LABELS" ${ARGN})
  list(LENGTH A_TESTS n)
  math(EXPR odd "${n} % 2")
  if(n EQUAL 0 OR odd)
    message(FATAL_ERROR "cg_add_gtest_group(${exe}): TESTS takes pairs of a test name and its source file")
  endif()
  set(names "")
  set(sources "")
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    math(EXPR j "${i} + 1")
    list(GET A_TESTS ${i} name)
    list(GET A_TESTS ${j} src)
    list(APPEND names ${name})
    list(APPEND sources ${src})
  endforeach()
  _cg_gtest_executable(${exe} "${sources}" "${A_LIBS}" "${A_TORCH}")
  set_target_properties(${exe} PROPERTIES UNITY_BUILD_BATCH_SIZE 0)  # all the files in one batch
  set(claimed "")
  set(every "")
  foreach(name src IN ZIP_LISTS names sources)
    # The filters come from the file's suites: a suite added to it re-runs the configure step.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src})
    file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/${src} heads
         REGEX "^(TEST|TEST_F|TEST_P|TYPED_TEST|TYPED_TEST_P)\\([A-Za-z0-9_]+,")
    if(NOT heads)
      message(FATAL_ERROR "cg_add_gtest_group(${exe}): no TEST(...) at the start of a line in ${src}")
    endif()
    list(TRANSFORM heads REPLACE "^[A-Z_]+\\(([A-Za-z0-9_]+),.*" "\\1" OUTPUT_VARIABLE suites)
    list(REMOVE_DUPLICATES suites)
    set(patterns "")
    foreach(suite IN LISTS suites)
      if(suite IN_LIST claimed)
        message(FATAL_ERROR "cg_add_gtest_group(${exe}): test suite ${suite} is defined in ${src} and in another "
                            "file of the group; give one of them another suite name")
      endif()
      # Suite.Test; a typed suite's Suite/0.Test; a value-parameterised Prefix/Suite.Test/0.
      list(APPEND patterns "${suite}.*" "${suite}/*" "*/${suite}.*")
    endforeach()
    list(APPEND claimed ${suites})
    list(APPEND every ${patterns})
    list(JOIN patterns ":" filter)
    add_test(NAME ${name} COMMAND ${exe} --gtest_brief=1 --gtest_filter=${filter})
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;${CG_TEST_TMPDIR}" LABELS "unit;${A_LABELS}")
  endforeach()
  list(JOIN every ":" every)
  # Every test the executable holds is run by one of those (none defined where the suite scan above does not look).
  add_test(NAME ${exe}_all_registered
           COMMAND sh -c "left=$(\"$0\" --gtest_list_tests --gtest_filter=\"-$1\") || exit 1; \
echo \"$left\" | grep -q '^  ' || exit 0; \
echo \"tests that no ctest test of $0 runs (put TEST( at the start of a line):\"; echo \"$left\"; exit 1"
                   $<TARGET_FILE:${exe}> "${every}")
  set_tests_properties(${exe}_all_registered PROPERTIES LABELS "unit;${A_LABELS}")
endfunction()

# cg_add_fixture_dir(NAME LABELS): the ctest fixture NAME, a folder its tests share, made for each ctest invocation in
# build/tests/tmp (tests/scripts/fixture_dir.sh): tests NAME_setup and NAME_cleanup make it and remove it, keeping it
# when a test that used it did not pass. A test uses it with FIXTURES_REQUIRED NAME and a command run through
# ${NAME_run}, in whose arguments @DIR@ (and in whose environment $CG_FIXTURE_DIR) is the folder.
function(cg_add_fixture_dir name labels)
  set(script bash ${PROJECT_SOURCE_DIR}/tests/scripts/fixture_dir.sh ${PROJECT_BINARY_DIR}/tests/tmp/${name})
  add_test(NAME ${name}_setup COMMAND ${script} setup)
  set_tests_properties(${name}_setup PROPERTIES LABELS "${labels}" FIXTURES_SETUP ${name})
  add_test(NAME ${name}_cleanup COMMAND ${script} cleanup)
  set_tests_properties(${name}_cleanup PROPERTIES LABELS "${labels}" FIXTURES_CLEANUP ${name})
  set(${name}_run ${script} run PARENT_SCOPE)
endfunction()

# cg_add_mpi_test(NAME TARGET NP [ARGS ...]): run an existing executable under mpirun with NP ranks.
function(cg_add_mpi_test name target np)
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe --bind-to none
                   -np ${np} $<TARGET_FILE:${target}> ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;${CG_TEST_TMPDIR}" LABELS "mpi"
                       PROCESSORS ${np} TIMEOUT 600)
endfunction()

# cg_add_pymatgen_reference(NAME SCRIPT DUMP_SOURCE LIBS LABELS [ARGS ...]): a dump executable built from DUMP_SOURCE
# (linking LIBS) whose answers SCRIPT, run by the system python3 with pymatgen, compares with pymatgen's:
# `python3 SCRIPT <dump> ARGS...`. The script exits 77 (skipped) when pymatgen is missing. Several scripts may share
# one dump source (built once).
function(cg_add_pymatgen_reference name script dump_source libs labels)
  get_filename_component(_dump ${dump_source} NAME_WE)
  if(NOT TARGET ${_dump})
    add_executable(${_dump} ${dump_source})
    target_link_libraries(${_dump} PRIVATE ${libs})
  endif()
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/${script} $<TARGET_FILE:${_dump}> ${ARGN})
  # 10-100 s on 2 idle cores; pymatgen's side took 344 s on a machine loaded 6x over: the limit only catches a hang.
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 900 SKIP_RETURN_CODE 77)
endfunction()
