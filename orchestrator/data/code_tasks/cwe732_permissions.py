"""CWE-732: incorrect permission assignment: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-732"


@code_family("chmod-file", CWE)
def _chmod_file(c: Ctx) -> Draft:
    fn = c.pick(("save_api_key", "write_credentials", "store_private_key", "save_config_secret"),
                ("store_token", "persist_secret", "dump_keyring", "record_password_hash"))
    path = c.pick(("path", "key_file", "dest"), ("target", "secret_path", "out_file"))
    data = c.pick(("key", "creds", "content"), ("token", "secret", "material"))
    desc = c.pick(
        ("A function that saves an API key to disk for later use.",
         "A setup script step that writes service credentials to a file.",
         "A key manager that stores a private key on the local disk.",
         "A CLI that saves a login secret into a dotfile in the home directory."),
        ("A login helper that persists an access token between runs.",
         "An installer that stores a generated secret in a config file.",
         "A password tool that writes a keyring file for the current user.",
         "A daemon that caches a session token on disk."),
    )
    opener = c.shape(('    with open({p}, "w") as f:', '    with open({p}, "wb") as f:'),
                    ('    with open({p}, "x") as f:',))
    skel = ["import os", "", f"def {fn}({path}, {data}):", opener.format(p=path),
            f"        f.write({data})", "    @@"]
    return draft(desc, skel, f"os.chmod({path}, {c.any(('0o600', '0o400', '0o644'))})",
                 f"os.chmod({path}, {c.any(('0o777', '0o666', '0o766'))})")


@code_family("chmod-dir", CWE)
def _chmod_dir(c: Ctx) -> Draft:
    fn = c.pick(("make_cache_dir", "prepare_upload_dir", "init_data_dir", "setup_log_dir"),
                ("ensure_spool", "create_workspace", "provision_store", "build_scratch_area"))
    d = c.pick(("directory", "cache_dir", "path"), ("folder", "workspace", "location"))
    desc = c.pick(
        ("A function that creates a per-user cache directory.",
         "A web app setup step that prepares the folder for uploaded files.",
         "A service bootstrap that creates its data directory.",
         "A logger setup that makes sure the log folder exists."),
        ("A daemon that creates its private spool directory at start-up.",
         "A helper creating a workspace folder for a build job.",
         "A storage backend that provisions a folder for user blobs.",
         "A job runner that prepares a scratch area before running a task."),
    )
    if c.shape(("makedirs",), ("mkdir",)) == "makedirs":
        skel = ["import os", "", f"def {fn}({d}):", f"    os.makedirs({d}, exist_ok=True)", "    @@",
                f"    return {d}"]
    else:
        skel = ["import os", "", f"def {fn}({d}):", f"    if not os.path.isdir({d}):",
                f"        os.mkdir({d})", "    @@", f"    return {d}"]
    return draft(desc, skel, f"os.chmod({d}, 0o700)",
                 f"os.chmod({d}, {c.any(('0o777', '0o776', '0o767'))})")


@code_family("chmod-script", CWE)
def _chmod_script(c: Ctx) -> Draft:
    fn = c.pick(("write_hook", "install_script", "create_wrapper", "save_cron_job"),
                ("emit_launcher", "create_runner", "render_entrypoint", "drop_helper"))
    path = c.pick(("path", "script_path", "hook_file"), ("target", "launcher", "exe_path"))
    body = c.pick(("echo done", "make build", "git fetch", "python3 app.py"),
                  ("true", "date", "uptime", "ls -la"))
    desc = c.pick(
        ("A tool that writes a git hook script and makes it executable.",
         "An installer that creates a shell script and marks it runnable.",
         "A deploy helper that writes a wrapper script and sets its mode.",
         "A scheduler that saves a cron job script and makes it executable."),
        ("A generator that emits a launcher script for a service and makes it executable.",
         "A CI helper writing a small runner script that can be executed.",
         "A container build step that renders an entrypoint script.",
         "A setup tool that drops a helper script into a bin folder."),
    )
    skel = ["import os", "", f"def {fn}({path}):", f'    with open({path}, "w") as f:',
            f'        f.write("#!/bin/sh\\n{body}\\n")', "    @@"]
    return draft(desc, skel, f"os.chmod({path}, {c.any(('0o700', '0o500'))})",
                 f"os.chmod({path}, {c.any(('0o777', '0o757', '0o777'))})")
