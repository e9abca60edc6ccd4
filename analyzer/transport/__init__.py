"""Transport stage: IP, UDP, TCP, SCTP and WebSocket, up to complete application-message bytes."""
