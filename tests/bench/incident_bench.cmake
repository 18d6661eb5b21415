# incident-service: create/get against ping over req/rep (sequential and
# concurrent: group commit), and health.changed -> incident.opened against
# the bus's own publish -> tail latency.
if(TARGET incident_core)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME bench_incident
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/incident_bench.py
              --bin ${PROJECT_BINARY_DIR}/bin
              --proto ${PROJECT_SOURCE_DIR}/proto)
    set_tests_properties(bench_incident PROPERTIES LABELS bench TIMEOUT 300)
  endif()
endif()
