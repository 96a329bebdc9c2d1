# Small helpers shared by every folder's CMakeLists.txt.

# cg_use_torch(target): link libtorch (and OpenMP, CG_WITH_OPENMP) and reuse the one precompiled <torch/torch.h>.
function(cg_use_torch tgt)
  target_link_libraries(${tgt} PUBLIC ${TORCH_LIBRARIES} ${CG_OPENMP_LIBS})
  target_precompile_headers(${tgt} REUSE_FROM cg_torch_pch)
endfunction()

# cg_add_gtest(NAME SOURCES ... LIBS ... [TORCH]): one GoogleTest executable registered with ctest.
function(cg_add_gtest name)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LIBS} GTest::gtest GTest::gtest_main)
  if(A_TORCH)
    cg_use_torch(${name})
  endif()
  target_compile_definitions(${name} PRIVATE CG_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CG_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1" LABELS "unit;${A_LABELS}")
endfunction()

# cg_add_mpi_test(NAME TARGET NP [ARGS ...]): run an existing executable under mpirun with NP ranks.
function(cg_add_mpi_test name target np)
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe --bind-to none
                   -np ${np} $<TARGET_FILE:${target}> ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1" LABELS "mpi" PROCESSORS ${np} TIMEOUT 600)
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
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 300 SKIP_RETURN_CODE 77)
endfunction()
