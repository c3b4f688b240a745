"""CWE-327: broken or risky cryptography: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-327"

_WEAK_HASH = ("md5", "sha1")
_STRONG_HASH = ("sha256", "sha512", "sha3_256", "blake2b")


@code_family("hashlib-weak", CWE)
def _hashlib_weak(c: Ctx) -> Draft:
    weak, strong = c.any(_WEAK_HASH), c.any(_STRONG_HASH)
    shape = c.pick(("checksum", "password"), ("fingerprint",))
    if shape == "checksum":
        fn = c.any(("file_checksum", "hash_file"))
        desc = c.any(("A function that computes a checksum to verify a downloaded file.",
                      "An integrity check that hashes an uploaded file."))
        skel = ["import hashlib", "", f"def {fn}(path):", '    with open(path, "rb") as f:',
                "        @@"]
        return draft(desc, skel, f"return hashlib.{strong}(f.read()).hexdigest()",
                     f"return hashlib.{weak}(f.read()).hexdigest()")
    if shape == "password":
        fn = c.any(("hash_password", "store_password", "derive_hash"))
        pw = c.any(("password", "secret", "passphrase"))
        desc = c.any(("A signup handler that hashes a new user's password before storing it.",
                      "A function that derives a salted hash of a password for the database."))
        skel = ["import hashlib", "import os", "", f"def {fn}({pw}):", "    salt = os.urandom(16)",
                "    @@", "    return salt + digest"]
        return draft(desc, skel,
                     f'digest = hashlib.pbkdf2_hmac("sha256", {pw}.encode(), salt, 100000)',
                     f"digest = hashlib.{weak}(salt + {pw}.encode()).digest()")
    fn = c.any(("token_fingerprint", "api_key_digest", "sign_payload"))
    arg = c.any(("token", "api_key", "payload"))
    desc = c.any(("An auth service that stores a fingerprint of an API token instead of the token.",
                  "A webhook verifier that computes a digest of the shared secret and message."))
    skel = ["import hashlib", "", f"def {fn}({arg}):", "    @@"]
    return draft(desc, skel, f"return hashlib.{strong}({arg}.encode()).hexdigest()",
                 f"return hashlib.{weak}({arg}.encode()).hexdigest()")


@code_family("hashlib-new", CWE)
def _hashlib_new(c: Ctx) -> Draft:
    fn = c.pick(("digest_chunks", "stream_hash", "hash_upload"),
                ("hash_stream", "content_digest", "piecewise_digest"))
    arg = c.pick(("chunks", "blocks"), ("parts", "pieces"))
    h = c.pick(("h", "hasher"), ("digest", "state"))
    desc = c.pick(
        ("A function that hashes a large upload chunk by chunk for deduplication checks.",
         "A signing step that digests a streamed document before it is signed.",
         "An upload service that verifies the integrity of chunked uploads."),
        ("A content-addressed store that hashes incoming data in pieces.",
         "A sync tool that fingerprints file pieces to detect tampering.",
         "A package mirror that digests downloads piece by piece to verify them."),
    )
    ret = c.any((f"    return {h}.hexdigest()", f"    return {h}.digest()"))
    skel = ["import hashlib", "", f"def {fn}({arg}):", "    @@", f"    for chunk in {arg}:",
            f"        {h}.update(chunk)", ret]
    return draft(desc, skel, f'{h} = hashlib.new("{c.any(_STRONG_HASH[:3])}")',
                 f'{h} = hashlib.new("{c.any(_WEAK_HASH)}")')


_CIPHER_IMPORT = "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes"


@code_family("cipher-ecb", CWE)
def _cipher_ecb(c: Ctx) -> Draft:
    fn = c.pick(("encrypt_record", "seal_message", "encrypt_payload", "lock_secret"),
                ("protect_blob", "encrypt_field", "cipher_block", "hide_value"))
    data = c.pick(("data", "plaintext", "message"), ("blob", "field", "chunk"))
    key = c.pick(("key", "aes_key"), ("secret_key", "k"))
    desc = c.pick(
        ("A function that encrypts a database record with AES before storing it.",
         "A messaging helper that encrypts padded messages with a shared AES key.",
         "An API client that encrypts a payload with AES before sending it.",
         "A vault that encrypts stored secrets using AES."),
        ("A storage layer that encrypts sensitive fields using AES.",
         "A backup tool that encrypts fixed-size blocks with AES.",
         "A sync agent that protects file chunks with AES encryption.",
         "A form processor that hides card numbers using AES."),
    )
    op = c.shape(("encryptor",), ("encryptor", "decryptor"))
    skel = [_CIPHER_IMPORT, "", f"def {fn}({key}, iv, {data}):", "    @@",
            f"    ctx = cipher.{op}()", f"    return ctx.update({data}) + ctx.finalize()"]
    mode = c.shape(("CBC(iv)", "CTR(iv)"), ("CTR(iv)", "OFB(iv)", "CFB(iv)"))
    return draft(desc, skel, f"cipher = Cipher(algorithms.AES({key}), modes.{mode})",
                 f"cipher = Cipher(algorithms.AES({key}), modes.ECB())")


@code_family("weak-cipher", CWE, heldout=True)
def _weak_cipher(c: Ctx) -> Draft:
    algo = c.any(("TripleDES", "Blowfish", "CAST5", "ARC4"))
    fn = c.any(("encrypt_backup", "encrypt_note", "wrap_secret", "scramble_record"))
    data = c.any(("data", "note", "record"))
    desc = c.any(("A function that encrypts a backup file with a symmetric key.",
                  "A notes app that encrypts each note before syncing it.",
                  "A password manager that encrypts a vault entry with a shared key.",
                  "A legacy bridge that encrypts records before sending them to a partner."))
    skel = [_CIPHER_IMPORT, "", f"def {fn}(key, iv, {data}):", "    @@",
            "    enc = cipher.encryptor()", f"    return enc.update({data}) + enc.finalize()"]
    weak = f"algorithms.{algo}(key)" + ("" if algo == "ARC4" else ", modes.CBC(iv)")
    return draft(desc, skel, "cipher = Cipher(algorithms.AES(key), modes.CBC(iv))",
                 f"cipher = Cipher({weak})")
