"""CWE-605: binding to all interfaces: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft, flask_app

CWE = "CWE-605"


@code_family("socket-bind", CWE)
def _socket_bind(c: Ctx) -> Draft:
    fn = c.pick(("start_listener", "open_server", "debug_socket", "admin_port"),
                ("listen_local", "make_endpoint", "control_channel", "metrics_socket"))
    sock = c.pick(("sock", "server", "s"), ("listener", "srv", "conn"))
    desc = c.pick(
        ("A debug console that listens on a TCP port for local tools.",
         "A function that opens a server socket for an admin interface.",
         "A developer backdoor port that only the local machine should reach.",
         "A test harness that listens for connections from local test clients."),
        ("A metrics agent that accepts connections from processes on the same machine.",
         "A helper that starts a control socket used only by local scripts.",
         "An IPC server for a desktop app that talks to its own helper process.",
         "A plugin host listening for local plugin connections."),
    )
    skel = ["import socket", "", f"def {fn}(port):",
            f"    {sock} = socket.socket(socket.AF_INET, socket.SOCK_STREAM)", "    @@",
            f"    {sock}.listen({c.any(('1', '5', '16'))})", f"    return {sock}"]
    local = c.any(('"127.0.0.1"', '"localhost"'))
    return draft(desc, skel, f"{sock}.bind(({local}, port))", f'{sock}.bind(("0.0.0.0", port))')


@code_family("flask-host", CWE)
def _flask_host(c: Ctx) -> Draft:
    skel, route = flask_app(c)
    app = skel[2].split(" ")[0]
    desc = c.pick(
        (f"A local admin dashboard built with Flask with a /{route} endpoint.",
         f"A Flask tool exposing /{route} that should only be reachable from this machine.",
         f"A personal Flask app serving /{route} to the owner's browser."),
        (f"A developer-only Flask helper answering /{route} on the workstation.",
         f"An internal Flask panel with a /{route} route for local use.",
         f"A Flask debugging aid at /{route} meant for localhost."),
    )
    port = c.any(("5000", "8080", "8000"))
    local = c.any(('"127.0.0.1"', '"localhost"'))
    return draft(desc, skel, f"{app}.run(host={local}, port={port})",
                 f'{app}.run(host="0.0.0.0", port={port})')


@code_family("http-server-bind", CWE, heldout=True)
def _http_server_bind(c: Ctx) -> Draft:
    fn = c.any(("serve_files", "preview_site", "serve_docs", "share_folder"))
    srv = c.any(("server", "httpd"))
    cls, handler = c.any((("HTTPServer", "SimpleHTTPRequestHandler"),
                          ("ThreadingHTTPServer", "SimpleHTTPRequestHandler")))
    desc = c.any(("A script that serves a documentation folder for local preview.",
                  "A helper that starts a file server for the developer's own browser.",
                  "A static site generator's preview server for the author's machine.",
                  "A tool that shares a build folder with a browser on the same computer."))
    local = c.any(('"127.0.0.1"', '"localhost"'))
    skel = [f"from http.server import {cls}, {handler}", "", f"def {fn}(port):", "    @@",
            f"    {srv}.serve_forever()"]
    return draft(desc, skel, f"{srv} = {cls}(({local}, port), {handler})",
                 f'{srv} = {cls}(("0.0.0.0", port), {handler})')
