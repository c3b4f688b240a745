"""CWE-22: path traversal (archive extraction): task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-22"


@code_family("tarfile-extractall", CWE)
def _tarfile_extractall(c: Ctx) -> Draft:
    fn = c.pick(("unpack_backup", "extract_archive", "restore_snapshot", "install_bundle"),
                ("unpack_release", "expand_upload", "open_package", "import_archive"))
    src = c.pick(("archive_path", "tar_path", "src"), ("bundle", "package_file", "upload"))
    dest = c.pick(("dest", "out_dir", "target_dir"), ("destination", "workdir", "root"))
    desc = c.pick(
        ("A function that extracts a user-uploaded tar archive into a folder.",
         "A backup tool that restores a tarball downloaded from a remote server."),
        ("A plugin installer that unpacks a tar file supplied by a third party.",
         "A CI step that expands a build artifact archive received over the network."),
    )
    if c.shape(("with",), ("explicit",)) == "with":
        mode = c.any(("", ', "r:gz"', ', "r:*"'))
        skel = ["import tarfile", "", f"def {fn}({src}, {dest}):",
                f"    with tarfile.open({src}{mode}) as tar:", "        @@"]
        return draft(desc, skel, f'tar.extractall({dest}, filter="data")',
                     f"tar.extractall({dest})")
    skel = ["import tarfile", "", f"def {fn}({src}, {dest}):", f'    tar = tarfile.open({src}, "r")',
            "    @@", "    tar.close()"]
    return draft(desc, skel, f'tar.extractall(path={dest}, filter="data")',
                 f"tar.extractall(path={dest})")


@code_family("tarfile-members", CWE)
def _tarfile_members(c: Ctx) -> Draft:
    helper = c.pick(("safe_members", "_checked_members", "vetted"),
                    ("filtered_entries", "_trusted_entries", "clean_items"))
    fn = c.pick(("extract_upload", "unpack_theme", "install_plugin"),
                ("expand_dataset", "unpack_assets", "load_course_pack"))
    m = c.pick(("member", "entry"), ("info", "item"))
    src, dest = c.pick((("path", "dest"), ("archive", "out_dir")),
                       (("bundle", "target"), ("tarball", "root")))
    desc = c.pick(
        ("A theme uploader that extracts a tar archive after screening its members.",
         "A function that unpacks an uploaded tarball, skipping dangerous paths.",
         "A plugin manager that installs a tar archive with a member check."),
        ("A dataset fetcher that expands a tar archive, keeping only regular files.",
         "An asset pipeline step extracting an untrusted tarball with a member filter.",
         "A learning platform that unpacks a course pack uploaded by a teacher."),
    )
    cond = c.any((f'".." not in {m}.name and not {m}.name.startswith("/")',
                  f'not ({m}.name.startswith("/") or ".." in {m}.name)'))
    skel = ["import tarfile", "", f"def {helper}(tar):", f"    for {m} in tar.getmembers():",
            f"        if {m}.isfile() and {cond}:", f"            yield {m}", "",
            f"def {fn}({src}, {dest}):", f"    with tarfile.open({src}) as tar:", "        @@"]
    return draft(desc, skel, f"tar.extractall({dest}, members={helper}(tar))",
                 f"tar.extractall({dest})")


@code_family("tarfile-flask-upload", CWE)
def _tarfile_flask_upload(c: Ctx) -> Draft:
    route = c.pick(("upload", "submit", "deploy"), ("restore", "ingest", "publish"))
    field = c.pick(("archive", "file", "tarball"), ("bundle", "payload", "package"))
    dest = c.pick(("UPLOAD_DIR", "DATA_DIR"), ("STORE_DIR", "INBOX_DIR"))
    folder = c.pick(("srv", "var/app"), ("data", "storage"))
    desc = c.pick(
        (f"A Flask endpoint /{route} that accepts a tar archive and unpacks it on the server.",
         f"A web service route that extracts an uploaded tar file from the form field {field}.",
         f"A Flask deployment API at /{route} that unpacks a posted tarball."),
        (f"An upload API at /{route} that stores and expands a posted tarball.",
         f"A Flask handler that restores files from a tar archive posted as {field}.",
         f"A publishing endpoint /{route} that expands a tar archive from the client."),
    )
    ret = c.any(('    return "ok"', '    return "", 204', '    return {"status": "done"}'))
    skel = ["import tarfile", "from flask import Flask, request", "", "app = Flask(__name__)",
            f'{dest} = "{folder}/{route}"', "", f'@app.route("/{route}", methods=["POST"])',
            f"def {route}():", f'    with tarfile.open(fileobj=request.files["{field}"].stream) as tar:',
            "        @@", ret]
    return draft(desc, skel, f'tar.extractall({dest}, filter="data")', f"tar.extractall({dest})")
