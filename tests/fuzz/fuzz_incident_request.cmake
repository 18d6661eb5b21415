# incident-service's outside input: any bytes as an IncidentRequest through
# the rpc server and the incident handlers; a non-admin never sees an
# internal note, a name or a non-public incident.
if(TARGET incident_core)
  opsdesk_fuzz(fuzz_incident_request
    ${CMAKE_CURRENT_LIST_DIR}/fuzz_incident_request.c
    ${CMAKE_CURRENT_LIST_DIR}/fuzz_service.c
    LIBS incident_core
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_incident_request)
endif()
