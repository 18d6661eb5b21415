# ticket-service's outside input: any bytes as a TicketRequest through the
# rpc server and the ticket handlers; a non-admin never sees another
# user's ticket or an internal note.
if(TARGET ticket_core)
  opsdesk_fuzz(fuzz_ticket_request
    ${CMAKE_CURRENT_LIST_DIR}/fuzz_ticket_request.c
    ${CMAKE_CURRENT_LIST_DIR}/fuzz_service.c
    LIBS ticket_core
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_ticket_request)
endif()
