"""CWE-295: improper certificate validation: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-295"


@code_family("requests-verify", CWE)
def _requests_verify(c: Ctx) -> Draft:
    url = c.pick(("url", "endpoint", "api_url"), ("service_url", "base", "target"))
    t = c.any(("5", "10", "30"))
    desc = c.pick(
        ("A client that fetches JSON from an internal HTTPS API.",
         "A function that posts an order to a payment provider over HTTPS.",
         "A health probe that queries an HTTPS service for its state.",
         "An integration that calls a bank's HTTPS API."),
        ("A sync job that uploads records to a partner's HTTPS service.",
         "A monitoring probe that calls a TLS-protected status endpoint.",
         "A CRM connector that updates contacts through an HTTPS API.",
         "A deploy hook that notifies an HTTPS release service."),
    )
    verb = c.pick(("get", "post"), ("put", "patch"))
    fn = c.pick((f"{verb}_json", f"call_{verb}", "query_api"),
                (f"{verb}_record", f"send_{verb}", "update_remote"))
    if verb == "get":
        params, extra = url, ""
    else:
        params, extra = f"{url}, payload", ", json=payload"
    tail = c.any(("    return resp.json()", "    return resp.status_code"))
    skel = ["import requests", "", f"def {fn}({params}):", "    @@", tail]
    return draft(desc, skel, f"resp = requests.{verb}({url}{extra}, timeout={t})",
                 f"resp = requests.{verb}({url}{extra}, verify=False, timeout={t})")


@code_family("ssl-unverified-context", CWE)
def _ssl_unverified(c: Ctx) -> Draft:
    host = c.pick(("host", "server"), ("hostname", "remote", "relay"))
    sec, vul = "ctx = ssl.create_default_context()", "ctx = ssl._create_unverified_context()"
    if not c.heldout:
        fn = c.any(("check_status", "fetch_page", "probe_https", "get_banner"))
        path = c.any(("/status", "/health", "/"))
        desc = c.any(("A health checker that requests a page from a server over HTTPS.",
                      "A function that reads an HTTPS page with http.client and an SSL context.",
                      "An uptime monitor that checks an HTTPS endpoint's status code.",
                      "A diagnostics tool fetching a status page over TLS."))
        skel = ["import http.client", "import ssl", "", f"def {fn}({host}):", "    @@",
                f"    conn = http.client.HTTPSConnection({host}, context=ctx, timeout=10)",
                f'    conn.request("GET", "{path}")', "    return conn.getresponse().status"]
        return draft(desc, skel, sec, vul)
    fn = c.any(("smtp_login", "open_mailer", "connect_relay", "mail_session"))
    desc = c.any(("A mail helper that logs into an SMTP server over TLS.",
                  "A function that authenticates against a TLS mail relay.",
                  "A newsletter tool that opens an authenticated SMTPS session.",
                  "An alerting service that connects to a mail server over SSL."))
    port = c.any(("465", "587"))
    skel = ["import smtplib", "import ssl", "", f"def {fn}({host}, user, password):", "    @@",
            f"    server = smtplib.SMTP_SSL({host}, {port}, context=ctx)",
            "    server.login(user, password)", "    return server"]
    return draft(desc, skel, sec, vul)


@code_family("paramiko-host-key", CWE, heldout=True)
def _paramiko_host_key(c: Ctx) -> Draft:
    fn = c.any(("open_sftp", "connect_backup_host", "sftp_session", "remote_files"))
    cl = c.any(("client", "ssh"))
    desc = c.any(("A deployment tool that opens an SFTP session to a server.",
                  "A backup job that connects over SSH to copy files to a remote host.",
                  "A log collector that fetches files from servers over SFTP.",
                  "An upload script that pushes build artifacts to a host over SSH."))
    policy = c.any(("AutoAddPolicy", "WarningPolicy"))
    skel = ["import paramiko", "", f"def {fn}(host, user):", f"    {cl} = paramiko.SSHClient()",
            "    @@", f"    {cl}.connect(host, username=user)", f"    return {cl}.open_sftp()"]
    return draft(desc, skel, [f"{cl}.load_system_host_keys()",
                               f"{cl}.set_missing_host_key_policy(paramiko.RejectPolicy())"],
                  f"{cl}.set_missing_host_key_policy(paramiko.{policy}())")
