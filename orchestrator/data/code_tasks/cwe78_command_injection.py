"""CWE-78: OS command injection: task families."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-78"


def _q(tokens: Sequence[str], args: dict[str, str]) -> str:
    """A command as a Python list literal; `{a}`-style tokens become argument names."""
    return "[" + ", ".join(args.get(t, f'"{t}"') for t in tokens) + "]"


def _sh(tokens: Sequence[str], args: dict[str, str]) -> str:
    """A command as the body of an f-string."""
    return " ".join("{" + args[t] + "}" if t in args else t for t in tokens)


@code_family("os-system-ping", CWE)
def _os_system_ping(c: Ctx) -> Draft:
    thing = c.pick(("host", "server", "node"), ("machine", "device", "router"))
    fn = c.pick(("ping_host", "check_host", "probe_host", "host_is_up"),
                ("is_reachable", "ping_target", "check_alive", "echo_test"))
    arg = c.pick(("host", "hostname", "addr"), ("target", "ip", "dest"))
    n = c.any(("1", "2", "3"))
    desc = c.pick(
        (f"A tool that pings a {thing} given by the user.",
         f"A health check that pings a {thing} named in a web request."),
        (f"A utility that checks whether a user-chosen {thing} answers ping.",
         f"A monitoring helper that sends {n} ping packets to a {thing} supplied by the user."),
    )
    argv = f'["ping", "-c", "{n}", {arg}]'
    shape = c.shape(("inline", "cmd"), ("status",))
    if shape == "inline":
        sec: list[str] = [f"subprocess.run({argv}, check=False)"]
        vul: list[str] = [f'os.system(f"ping -c {n} {{{arg}}}")']
    elif shape == "cmd":
        sec = [f"cmd = {argv}", "subprocess.run(cmd, check=False)"]
        vul = [f'cmd = "ping -c {n} " + {arg}', "os.system(cmd)"]
    else:
        sec = [f"result = subprocess.run({argv}, capture_output=True)",
               "return result.returncode == 0"]
        vul = [f'status = os.system(f"ping -c {n} {{{arg}}}")', "return status == 0"]
    return draft(desc, ["import os", "import subprocess", "", f"def {fn}({arg}):", "    @@"],
                 sec, vul)


_SHELL_TRAIN = (
    ("compresses a file", ("compress_file", "gzip_file"), ("gzip", "-k", "{a}"), "path", ""),
    ("counts the lines in a file", ("count_lines", "line_count"), ("wc", "-l", "{a}"), "path", ""),
    ("lists the contents of a directory", ("list_dir", "show_folder"), ("ls", "-l", "{a}"),
     "directory", ""),
    ("searches a log file for a word", ("search_log", "grep_log"), ("grep", "{b}", "{a}"),
     "logfile", "word"),
)
_SHELL_HELDOUT = (
    ("archives a folder into a tarball", ("pack_folder", "make_tarball"),
     ("tar", "-czf", "{b}", "{a}"), "folder", "archive"),
    ("computes the checksum of a file", ("file_checksum", "digest_of"), ("sha256sum", "{a}"),
     "target", ""),
    ("reports the disk usage of a folder", ("disk_usage", "folder_size"), ("du", "-sh", "{a}"),
     "location", ""),
    ("reports the type of a file", ("file_kind", "detect_type"), ("file", "{a}"), "item", ""),
)


@code_family("subprocess-shell", CWE)
def _subprocess_shell(c: Ctx) -> Draft:
    what, fns, tokens, a, b = c.pick(_SHELL_TRAIN, _SHELL_HELDOUT)
    fn = c.any(fns)
    args = {"{a}": a, "{b}": b}
    params = f"{a}, {b}" if b else a
    desc = c.pick(
        (f"A function that {what} given by the user.",
         f"A web helper that {what} chosen in a form."),
        (f"A maintenance script step which {what} picked by an operator.",
         f"A command-line helper that {what} passed as an argument."),
    )
    sh, lst = _sh(tokens, args), _q(tokens, args)
    shape = c.shape(("run", "check_output"), ("popen", "call"))
    if shape == "run":
        out = c.any(("out", "res", "proc"))
        tail = [f"    return {out}.stdout"]
        sec = f"{out} = subprocess.run({lst}, capture_output=True, text=True)"
        vul = f'{out} = subprocess.run(f"{sh}", shell=True, capture_output=True, text=True)'
    elif shape == "check_output":
        tail = []
        sec = f"return subprocess.check_output({lst}, text=True)"
        vul = f'return subprocess.check_output(f"{sh}", shell=True, text=True)'
    elif shape == "call":
        tail = []
        sec = f"return subprocess.call({lst}) == 0"
        vul = f'return subprocess.call(f"{sh}", shell=True) == 0'
    else:
        tail = ["    return proc.communicate()[0]"]
        sec = f"proc = subprocess.Popen({lst}, stdout=subprocess.PIPE)"
        vul = f'proc = subprocess.Popen(f"{sh}", shell=True, stdout=subprocess.PIPE)'
    return draft(desc, ["import subprocess", "", f"def {fn}({params}):", "    @@", *tail],
                 sec, vul)


@code_family("os-popen-lookup", CWE, heldout=True)
def _os_popen_lookup(c: Ctx) -> Draft:
    tool = c.any(("nslookup", "whois", "dig", "host"))
    fn = c.any(("lookup_domain", "resolve_name", "domain_info", f"run_{tool}"))
    arg = c.any(("domain", "name", "fqdn"))
    desc = c.any((f"A DNS tool that runs {tool} on a domain typed by the user.",
                  f"A web page that shows {tool} output for a domain from a query string."))
    if c.coin():
        sec = f'return subprocess.run(["{tool}", {arg}], capture_output=True, text=True).stdout'
        vul = f'return os.popen(f"{tool} {{{arg}}}").read()'
        tail: list[str] = []
    else:
        sec = f'output = subprocess.check_output(["{tool}", {arg}], text=True)'
        vul = f'output = os.popen("{tool} " + {arg}).read()'
        tail = ["    return output.strip()"]
    return draft(desc, ["import os", "import subprocess", "", f"def {fn}({arg}):", "    @@",
                         *tail], sec, vul)
