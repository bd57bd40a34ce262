# HTTP server, client and gzip decoding (src/api/http_*, src/ingest/gzip.*): library tally_http.
add_library(tally_http INTERFACE)
