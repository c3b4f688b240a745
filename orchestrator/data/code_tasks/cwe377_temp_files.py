"""CWE-377: insecure temporary files: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-377"


@code_family("tempfile-mktemp", CWE)
def _tempfile_mktemp(c: Ctx) -> Draft:
    fn = c.pick(("export_rows", "dump_report", "write_csv", "save_batch"),
                ("spool_lines", "stage_output", "flush_records", "emit_listing"))
    arg = c.pick(("rows", "lines", "items"), ("records", "entries", "values"))
    suffix = c.pick((".csv", ".txt", ".dat"), (".log", ".tsv", ".out"))
    desc = c.pick(
        ("A function that writes report rows to a temporary file and returns its path.",
         "An exporter that stages CSV data in a temp file before upload.",
         "A batch job that writes its results to a fresh temporary file.",
         "A helper saving a list of lines to a temporary file for another tool."),
        ("A job that spools its output to a scratch file for another process.",
         "A helper that writes records to a fresh temporary file.",
         "A logger that flushes buffered entries to a temporary file.",
         "A tool that emits a listing into a temp file and returns where it is."),
    )
    body = f'    f.write("\\n".join({arg}))'
    if c.shape(("mkstemp", "mkstemp"), ("mkstemp", "named")) == "mkstemp":
        sec = [f'fd, path = tempfile.mkstemp(suffix="{suffix}")', 'with os.fdopen(fd, "w") as f:',
               body]
    else:
        sec = [f'with tempfile.NamedTemporaryFile("w", suffix="{suffix}", delete=False) as f:',
               body, "path = f.name"]
    vul = [f'path = tempfile.mktemp(suffix="{suffix}")', 'with open(path, "w") as f:', body]
    skel = ["import os", "import tempfile", "", f"def {fn}({arg}):", "    @@", "    return path"]
    return draft(desc, skel, sec, vul)


@code_family("hardcoded-tmp", CWE)
def _hardcoded_tmp(c: Ctx) -> Draft:
    fn = c.pick(("save_upload", "cache_blob", "write_temp", "buffer_download"),
                ("stash_bytes", "write_scratch", "park_payload", "spill_to_disk"))
    name = c.pick(("name", "filename", "fname"), ("label", "key", "slug"))
    data = c.pick(("data", "content", "body"), ("payload", "raw", "buf"))
    desc = c.pick(
        ("A web handler that saves an uploaded file to a temporary location.",
         "A function that caches downloaded bytes in a temp directory.",
         "A download manager that buffers a file on disk before moving it.",
         "A helper that writes bytes to a temporary file and returns the path."),
        ("A converter that stashes intermediate bytes in a scratch folder.",
         "A worker that writes a payload to a temporary file for a subprocess.",
         "A queue consumer that parks a message body on disk for later.",
         "A stream processor that spills a buffer to a scratch file."),
    )
    tmp = c.any(("/tmp", "/var/tmp"))
    vul = c.any((f'path = os.path.join("{tmp}", {name})', f'path = f"{tmp}/{{{name}}}"'))
    skel = ["import os", "import tempfile", "", f"def {fn}({name}, {data}):", "    @@",
            '    with open(path, "wb") as f:', f"        f.write({data})", "    return path"]
    return draft(desc, skel, f"path = os.path.join(tempfile.mkdtemp(), {name})", vul)
