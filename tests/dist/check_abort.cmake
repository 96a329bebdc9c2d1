# Run dist_abort_demo on 2 ranks (rank 1 fails, rank 0 waits in a barrier) and require: the job ends within
# TIMEOUT seconds, with a non-zero exit code, and stderr names the failing rank and its message.
# MODE=alone: the demo without mpirun (one rank, which fails): exit code 1, the message, and no MPI_Abort banner.
# In every mode the failing rank runs the demo's AbortCleanup before it ends (abort_all unwinds nothing).
# MODE=relay: rank 1's error is relayed to rank 0, which reports it and runs its cleanup too.
# cmake -DMPIEXEC=.. -DDEMO=.. -DMODE=throw|exit|relay|alone -DTIMEOUT=60 -P check_abort.cmake
# MODE=early: both ranks fail before MPI starts; each names its own rank (from the launcher's environment).
# MODE=early_env: the same alone, under the variables of each launcher in turn: the first one set names the rank.
# MODE=input: on 3 ranks, every rank fails with the same InputError: it is printed once, by rank 0.
# MODE=input1: on 3 ranks, rank 1 alone fails with an InputError: its message is printed, once, by rank 1.
# MODE=mpi1: an MPI call fails on rank 1 alone inside every_rank_alike, with the relay on: rank 1 says it and rank 0
# ends the job within 5 s of the failure (it waited run_main's 10 s for rank 0 to say it, as an InputError).
if(MODE STREQUAL "alone")
  execute_process(COMMAND ${DEMO} throw TIMEOUT ${TIMEOUT} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
elseif(MODE STREQUAL "early_env")
  set(_clear --unset=OMPI_COMM_WORLD_RANK --unset=PMI_RANK --unset=PMIX_RANK --unset=SLURM_PROCID)
  foreach(_case "OMPI_COMM_WORLD_RANK=2;PMI_RANK=3;PMIX_RANK=5;SLURM_PROCID=7|2"
                "PMI_RANK=3;PMIX_RANK=5;SLURM_PROCID=7|3" "PMIX_RANK=5;SLURM_PROCID=7|5" "SLURM_PROCID=7|7" "|0"
                "PMI_RANK=x1;SLURM_PROCID=4|4")
    string(REPLACE "|" ";" _case "${_case}")
    list(GET _case -1 _want)
    list(REMOVE_AT _case -1)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env ${_clear} ${_case} ${DEMO} early TIMEOUT ${TIMEOUT}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT "${err}" MATCHES "^\\[rank ${_want}\\] fatal: deliberate failure before MPI\n$")
      message(FATAL_ERROR "with '${_case}': expected '[rank ${_want}] fatal: deliberate failure before MPI', "
                          "got:\n${err}")
    endif()
  endforeach()
  return()
else()
  set(_np 2)
  if(MODE MATCHES "^input")
    set(_np 3)
  endif()
  execute_process(
    COMMAND ${MPIEXEC} --allow-run-as-root --oversubscribe --bind-to none -np ${_np} ${DEMO} ${MODE}
    TIMEOUT ${TIMEOUT}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
endif()
message(STATUS "exit: ${rc}\nstdout:\n${out}\nstderr:\n${err}")
if(NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the job did not end by itself within ${TIMEOUT}s (${rc}): a rank hangs")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited 0 although rank 1 failed")
endif()
if(MODE STREQUAL "alone")
  set(expect "\\[rank 0\\] fatal: .*deliberate failure on rank 0")
  if("${err}${out}" MATCHES "MPI_ABORT")
    message(FATAL_ERROR "a job of one rank printed MPI_Abort's banner")
  endif()
  if(NOT rc EQUAL 1)
    message(FATAL_ERROR "expected exit code 1, got ${rc}")
  endif()
elseif(MODE STREQUAL "throw" OR MODE STREQUAL "relay")
  set(expect "\\[rank 1\\] fatal: .*deliberate failure on rank 1")
elseif(MODE MATCHES "^input")  # one line: who failed, or rank 0 for all
  if(MODE STREQUAL "input")
    set(_who 0)
    set(_what "deliberate input error, the same on every rank")
  else()
    set(_who 1)
    set(_what "deliberate input error on rank 1 only")
  endif()
  string(REGEX MATCHALL "fatal:" _copies "${err}${out}")
  list(LENGTH _copies _n)
  if(NOT _n EQUAL 1 OR NOT "${err}" MATCHES "\\[rank ${_who}\\] fatal: ${_what}\n")
    message(FATAL_ERROR "expected the one line '[rank ${_who}] fatal: ${_what}', got ${_n} 'fatal:' lines")
  endif()
  if(NOT "${err}" MATCHES "abort cleanup ran on rank ${_who}")
    message(FATAL_ERROR "expected 'abort cleanup ran on rank ${_who}' on stderr")
  endif()
  return()
elseif(MODE STREQUAL "mpi1")
  string(TIMESTAMP _end "%s" UTC)
  if(NOT "${err}" MATCHES "failing at ([0-9]+)")
    message(FATAL_ERROR "expected rank 1's 'failing at <seconds>' on stderr")
  endif()
  math(EXPR _took "${_end} - ${CMAKE_MATCH_1}")
  if(NOT "${err}" MATCHES "\\[rank 1\\] fatal: [^\n]*MPI call failed: MPI_Bcast" OR
     NOT "${err}" MATCHES "\\[rank 0\\] fatal: rank 1 failed, ending the job: [^\n]*MPI call failed")
    message(FATAL_ERROR "expected rank 1's failed MPI_Bcast, said by rank 1 and by rank 0 as it ended the job")
  endif()
  if(_took GREATER 5)
    message(FATAL_ERROR "the job ended ${_took} s after rank 1's MPI call failed, expected at once")
  endif()
  return()
elseif(MODE STREQUAL "early")  # each rank's own line; nothing was set up to clean
  foreach(_r 0 1)
    if(NOT "${err}" MATCHES "\\[rank ${_r}\\] fatal: deliberate failure before MPI")
      message(FATAL_ERROR "expected '[rank ${_r}] fatal: deliberate failure before MPI' on stderr")
    endif()
  endforeach()
  return()
else()
  set(expect "\\[rank 1\\] fatal: exited with code 3")
endif()
if(NOT "${err}${out}" MATCHES "${expect}")
  message(FATAL_ERROR "expected the message '${expect}' on stderr")
endif()
if(MODE STREQUAL "alone")
  set(cleaned "abort cleanup ran on rank 0")
else()
  set(cleaned "abort cleanup ran on rank 1")
endif()
if(NOT "${err}" MATCHES "${cleaned}")
  message(FATAL_ERROR "expected '${cleaned}' on stderr: abort_all did not run the AbortCleanup")
endif()
# relay: rank 1's error reached rank 0, which reported it and ran its own cleanup before the job ended.
if(MODE STREQUAL "relay")
  if(NOT "${err}" MATCHES "\\[rank 0\\] fatal: rank 1 failed, ending the job: .*deliberate failure on rank 1")
    message(FATAL_ERROR "expected rank 0 to report rank 1's error")
  endif()
  if(NOT "${err}" MATCHES "abort cleanup ran on rank 0")
    message(FATAL_ERROR "expected 'abort cleanup ran on rank 0' on stderr: rank 0 was killed without its cleanup")
  endif()
endif()
