"""CWE-326: inadequate encryption strength: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-326"


@code_family("rsa-key-size", CWE)
def _rsa_key_size(c: Ctx) -> Draft:
    fn = c.pick(("generate_keypair", "new_signing_key", "make_jwt_key", "create_rsa_key"),
                ("make_rsa_key", "create_host_key", "fresh_backup_key", "issue_device_key"))
    desc = c.pick(
        ("A function that generates an RSA key pair for signing tokens.",
         "A setup tool that creates a new RSA private key for a service.",
         "An auth server that creates the RSA key used to sign JWTs.",
         "A helper that generates RSA keys for a new customer account."),
        ("A certificate helper that makes an RSA key for a new host.",
         "A provisioning step generating an RSA key for encrypting backups.",
         "An IoT enrolment service that issues an RSA key for each device.",
         "A tool generating an RSA key pair for an SSH-like protocol."),
    )
    strong = c.any(("2048", "3072", "4096"))
    ret = c.shape(("    return key", "    return key.public_key()"),
                 ("    return key, key.public_key()",))
    skel = ["from cryptography.hazmat.primitives.asymmetric import rsa", "", f"def {fn}():", "    @@",
            ret]
    if c.shape(("kw",), ("kw", "positional")) == "kw":
        return draft(desc, skel,
                     f"key = rsa.generate_private_key(public_exponent=65537, key_size={strong})",
                     "key = rsa.generate_private_key(public_exponent=65537, key_size=1024)")
    return draft(desc, skel, f"key = rsa.generate_private_key(65537, {strong})",
                 "key = rsa.generate_private_key(65537, 1024)")


@code_family("dsa-key-size", CWE)
def _dsa_key_size(c: Ctx) -> Draft:
    fn = c.pick(("generate_dsa_key", "new_dsa_signer", "make_release_key", "create_signer"),
                ("make_dsa_key", "create_dsa_identity", "new_log_signer", "issue_dsa_key"))
    desc = c.pick(
        ("A function that generates a DSA key for signing release files.",
         "A tool that creates a DSA signing key for a package repository.",
         "A build server step that makes a DSA key to sign artifacts.",
         "A helper generating the DSA key of a document-signing service."),
        ("An identity service that makes a DSA key for a new device.",
         "A helper creating a DSA key used to sign audit logs.",
         "A license server that generates a DSA key for signing licences.",
         "A registry that issues a DSA signing key to each publisher."),
    )
    ret = c.shape(("    return key", "    return key.public_key()"),
                 ("    return key, key.public_key()",))
    skel = ["from cryptography.hazmat.primitives.asymmetric import dsa", "", f"def {fn}():", "    @@",
            ret]
    return draft(desc, skel, f"key = dsa.generate_private_key(key_size={c.any(('2048', '3072'))})",
                 "key = dsa.generate_private_key(key_size=1024)")
