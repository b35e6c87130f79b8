#!/usr/bin/env python3
"""A tiny receiver for lvahttpsink: prints each POSTed document on one line and answers 204.

usage: python3 scripts/receiver.py [PORT]   (default 8080; stdlib only)
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request_id = self.headers.get("x-ms-client-request-id", "-")
        print(f"{request_id} {body.decode('utf-8', 'replace')}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
