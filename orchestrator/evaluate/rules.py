"""AST rules of our own, for vulnerability classes that bandit misses or rates LOW.

The paper judged code with CodeQL, which counts hard-coded credentials (CWE-798), weak
randomness used for secrets (CWE-330) and XML parsers that resolve external entities (CWE-611).
bandit rates the first two LOW (B105-B107, B311: below the oracle's MEDIUM threshold, and B311
fires on *any* use of `random`) and has no check for lxml at all. These rules close that gap
without a new dependency and without running anything: they read the tree the oracle already
parsed (one `ast.parse` per sample, one walk over it).

A rule is registered by its id, like bandit's tests:

    @RULES.register("SLP005")
    class MyRule:
        rule_id = "SLP005"; name = "..."; cwe = "CWE-..."; node_types = (ast.Call,)
        needles = ("marshal",)  # lower-case text without which the rule cannot match
        def check(self, node, scope): yield Hit(node, "MEDIUM", "HIGH")

`scan(tree, source=code)` runs every registered rule and returns `Finding`s carrying rule id,
CWE, severity, confidence and line, which the oracle filters by the same thresholds as bandit's
issues. A rule none of whose `needles` occurs in the source is skipped, and a sample that no
rule could match is not walked at all: the oracle scores many samples and most are clean.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.registry import Registry


@dataclass(frozen=True)
class Finding:
    """One rule hit, located in the sample."""

    rule_id: str  # e.g. "SLP001"
    cwe: str  # e.g. "CWE-798"
    severity: str  # LOW, MEDIUM or HIGH, as bandit grades
    confidence: str
    line: int
    col: int


@dataclass(frozen=True)
class Hit:
    """What a rule yields: where, and how bad; the rule adds its id and CWE."""

    node: ast.AST
    severity: str
    confidence: str


class Scope:
    """Facts about one module that rules share: which imported names mean which modules."""

    def __init__(self, imports: Iterable[ast.Import | ast.ImportFrom]) -> None:
        self.aliases: dict[str, str] = {}
        for node in imports:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:  # `import a.b` binds `a`
                        head = alias.name.split(".")[0]
                        self.aliases[head] = head
            elif node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def qualified(self, expr: ast.expr) -> str | None:
        """`lxml.etree.parse` for `etree.parse` after `from lxml import etree`; None for what is
        not a dotted name (a call's result, a subscript). A name never imported stands for
        itself, so that a fill-in answer spliced without its imports is still judged."""
        if isinstance(expr, ast.Name):
            return self.aliases.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.qualified(expr.value)
            return None if base is None else f"{base}.{expr.attr}"
        return None


class Rule(Protocol):
    rule_id: str
    name: str  # what it looks for, in a few words
    cwe: str
    node_types: tuple[type[ast.AST], ...]  # the nodes `check` is called on
    needles: tuple[str, ...]  # lower-case substrings of the source; none present: no match

    def check(self, node: Any, scope: Scope) -> Iterator[Hit]:
        """Hits at or inside `node` (one of `node_types`)."""
        ...


RULES: Registry[Rule] = Registry("oracle rule")


def scan(tree: ast.AST, rules: Sequence[Rule] | None = None, source: str | None = None) -> list[Finding]:
    """Findings of `rules` (default: all registered) in `tree`, in line order, one walk.
    `source`, the text `tree` was parsed from, lets rules that cannot match be skipped."""
    active = [rule for _, rule in RULES.items()] if rules is None else list(rules)
    if source is not None:
        text = source.lower()
        active = [rule for rule in active if any(needle in text for needle in rule.needles)]
    if not active:
        return []
    wanted: dict[type[ast.AST], list[Rule]] = {}
    for rule in active:
        for node_type in rule.node_types:
            wanted.setdefault(node_type, []).append(rule)
    imports: list[ast.Import | ast.ImportFrom] = []
    todo: list[tuple[ast.AST, list[Rule]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
        interested = wanted.get(type(node))
        if interested:
            todo.append((node, interested))
    scope = Scope(imports)  # imports first: an import may follow its use in walk order
    seen: set[tuple[str, int, int]] = set()
    findings: list[Finding] = []
    for node, interested in todo:
        for rule in interested:
            for hit in rule.check(node, scope):
                line, col = getattr(hit.node, "lineno", 0), getattr(hit.node, "col_offset", 0)
                if (rule.rule_id, line, col) not in seen:  # a nested scope may report a call twice
                    seen.add((rule.rule_id, line, col))
                    findings.append(Finding(rule.rule_id, rule.cwe, hit.severity, hit.confidence,
                                            line, col))
    return sorted(findings, key=lambda f: (f.line, f.col, f.rule_id))


# --- names: which identifiers hold secrets ----------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

# Trailing words that say how a value is encoded, not what it is: `token_hex` is a token.
_ENCODING_WORDS = frozenset({"str", "string", "hex", "bytes", "b64", "raw", "text", "value", "val"})
_CREDENTIAL_NOUNS = frozenset({"password", "passwd", "pwd", "passphrase", "secret", "apikey",
                               "token", "credential", "credentials"})
# Words before `key` that make it a secret key rather than a dict key or a cache key.
_KEY_QUALIFIERS = frozenset({"api", "secret", "private", "signing", "encryption", "aes", "hmac",
                             "jwt", "access", "master", "auth", "session", "crypto", "cipher",
                             "fernet", "license"})
# Words before `token` that make it an authentication token. Most other tokens are vocabulary
# ("eos_token = '</s>'", "embed_tokens") or pagination ("next_token", "page_token").
_TOKEN_QUALIFIERS = frozenset({
    "access", "auth", "api", "bearer", "refresh", "session", "secret", "csrf", "xsrf", "reset",
    "verification", "verify", "confirm", "confirmation", "invite", "activation", "login", "jwt",
    "oauth", "id", "security", "unsubscribe", "email", "password", "remember", "device", "client",
    "user", "admin", "app", "service", "personal", "bot", "webhook", "github", "gh", "slack", "hf",
    "npm", "pypi", "upload", "download", "share", "magic", "otp", "signup", "private", "master",
    "discord", "telegram", "stripe", "twilio", "sendgrid", "aws", "gcp", "azure",
})
# Secrets that are not credentials but must be unpredictable (CWE-330 only).
_UNPREDICTABLE_NOUNS = frozenset({"salt", "nonce", "otp", "pin", "iv", "csrf", "xsrf", "cookie",
                                  "sessionid", "sid"})
_CODE_QUALIFIERS = frozenset({"reset", "verification", "verify", "confirmation", "confirm",
                              "auth", "otp", "access", "recovery", "activation", "invite",
                              "login", "mfa", "security", "one"})
# Words that make a name about a credential rather than the credential: HEADER_X_ACCESS_TOKEN
# holds a header's name, TOKEN_ENV_VAR an environment variable's.
_META_WORDS = frozenset({"header", "env", "var", "field", "name", "label", "param", "prompt",
                         "column", "attr", "url", "uri", "path", "file", "dir", "endpoint",
                         "prefix", "suffix", "pattern", "regex", "format", "type", "kind",
                         "mode", "policy", "length", "len", "size", "hint", "placeholder",
                         "description", "message", "msg", "error", "example"})
_MAKER_VERBS = frozenset({"generate", "gen", "make", "create", "new", "issue", "mint", "build"})
_PREPOSITIONS = frozenset({"for", "from", "of", "to", "with", "by", "in", "on"})


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def _noun_phrase(words: list[str]) -> list[str]:
    while len(words) > 1 and words[-1] in _ENCODING_WORDS:
        words = words[:-1]
    return words


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and word[:-1] in _CREDENTIAL_NOUNS | _UNPREDICTABLE_NOUNS \
        else word


def _names_credential(words: list[str]) -> bool:
    words = _noun_phrase(words)
    if not words or _META_WORDS.intersection(words):
        return False
    last, before = _singular(words[-1]), words[-2] if len(words) > 1 else ""
    if last == "token":
        return not before or before in _TOKEN_QUALIFIERS
    if last == "key":
        return before in _KEY_QUALIFIERS
    if last == "pass":  # DB_PASS, smtp_pass; a bare `pass` is not a name
        return bool(before) and before not in {"first", "second", "third", "last", "next", "by"}
    return last in _CREDENTIAL_NOUNS


def is_credential_name(name: str) -> bool:
    """A variable, attribute, keyword or dict key that holds a credential: `DB_PASSWORD`,
    `apiKey`, `client_secret`, `auth_token`, `SECRET_KEY`; not `password_length`, `token_url`,
    `eos_token`, `cache_key`."""
    return _names_credential(_words(name))


def is_secret_name(name: str) -> bool:
    """A name whose value must be unpredictable: every credential name, and salts, nonces,
    IVs, one-time codes, PINs, session ids (`reset_code`, `session_id`, `csrf_token`)."""
    words = _noun_phrase(_words(name))
    if not words:
        return False
    if _names_credential(words):
        return True
    last, before = _singular(words[-1]), words[-2] if len(words) > 1 else ""
    return (last in _UNPREDICTABLE_NOUNS
            or (last == "id" and before in {"session", "reset", "nonce"})
            or (last == "code" and before in _CODE_QUALIFIERS))


def is_secret_maker(function_name: str) -> bool:
    """A function that makes a secret: `generate_token`, `make_password_for_user`, `new_key`,
    `reset_code`; not `shuffle_deck`, `random_key` (picks a random dict key)."""
    if is_secret_name(function_name):
        return True
    words = _words(function_name)
    if len(words) < 2 or words[0] not in _MAKER_VERBS:
        return False
    phrase: list[str] = []
    for word in words[1:]:
        if word in _PREPOSITIONS:
            break
        phrase.append(word)
    if phrase and phrase[-1] == "key":  # generate_key, new_key: a made key is a secret one
        return True
    return bool(phrase) and is_secret_name("_".join(phrase))


# --- CWE-798: hard-coded credentials ----------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"\{.*\}|\$\{|\$[A-Z_]+|%\(|%s|^<.*>$|^\[.*\]$|\.\.\.|\*{3}|xxxx|"
    r"fake|dummy|placeholder|example|redacted|your", re.I)
# An environment variable's, a header's or a config key's name ("GOOGLE_APPLICATION_CREDENTIALS",
# "X-Auth-Token", "ssl.key.password"): a label for where a credential lives, when it names one.
_LABEL_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)+$"
                         r"|^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_NOT_SECRETS = frozenset({"true", "false", "yes", "no", "none", "null", "on", "off"})
_PATH_LIKE = re.compile(r"^(/|\./|\.\./|~/)|\.(pem|key|crt|cer|txt|json|ya?ml|env|ini|cfg)$", re.I)
_URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@", re.I)
_RANDOM_LOOKING = re.compile(r"^(?=.*\d|.{16})[\w\-.~+/=:]{8,}$")
_AUTH_SCHEMES = re.compile(r"^(bearer|basic|token|digest|apikey)\s+(\S+)$", re.I)
_ENV_GETTERS = frozenset({"os.getenv", "os.environ.get", "os.environ.setdefault", "environ.get",
                          "getenv"})
_BASIC_AUTH = frozenset({"requests.auth.HTTPBasicAuth", "requests.auth.HTTPDigestAuth",
                         "requests.HTTPBasicAuth", "HTTPBasicAuth", "HTTPDigestAuth",
                         "aiohttp.BasicAuth"})


def _literal_text(expr: ast.AST | None) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str | bytes):
        value = expr.value
        return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


def _looks_like_secret(value: str, name: str = "") -> bool:
    """A literal that could be a real secret: not empty, not a sentence or a prompt, not a
    placeholder ("{password}", "${DB_PASS}", "<token>", "****", "YOUR_API_KEY", "fake-key"),
    not a file path, not a flag ("true"), not an environment variable's or header's name, and
    not the name itself used as a label (`PASSWORD = "password"` names a form field)."""
    text = value.strip()
    if not text or any(ch.isspace() for ch in text) or len(set(text)) == 1:
        return False
    if _PLACEHOLDER.search(text) or _PATH_LIKE.search(text) or text.lower() in _NOT_SECRETS:
        return False
    if _LABEL_LIKE.match(text) and is_credential_name(text):
        return False
    squeeze = re.sub(r"[^a-z0-9]", "", text.lower())
    return not name or squeeze != re.sub(r"[^a-z0-9]", "", name.lower())


def _target_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript):  # app.config["SECRET_KEY"], os.environ["DB_PASSWORD"]
        return _literal_text(target.slice)
    return None


@RULES.register("SLP001")
class HardcodedCredential:
    """A credential written into the code: a literal assigned to, passed as, compared with or
    defaulted for a credential name; a literal `Authorization` header; a password inside a
    connection URL; a literal password handed to `.login()` or a basic-auth pair. bandit's
    B105-B107 see some of these at LOW severity only."""

    rule_id = "SLP001"
    name = "hard-coded credential"
    cwe = "CWE-798"
    node_types: tuple[type[ast.AST], ...] = (
        ast.Assign, ast.AnnAssign, ast.Call, ast.Dict, ast.Compare, ast.arguments, ast.Constant,
    )
    # every credential word ("passwd" contains "pass"), a URL's "user:pw@", `.login(`
    needles = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "@", "login")

    def check(self, node: Any, scope: Scope) -> Iterator[Hit]:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            yield from self._pairs(((_target_name(t), node.value) for t in targets), node)
        elif isinstance(node, ast.Call):
            yield from self._call(node, scope)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                yield from self._header(_literal_text(key), value)
                yield from self._pairs([(_literal_text(key), value)], value)
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                return  # `"Code" in credentials` tests membership, it compares no secret
            sides = [node.left, *node.comparators]
            names = [_target_name(side) if not isinstance(side, ast.Constant) else None
                     for side in sides]
            for name in filter(None, names):
                for side in sides:
                    yield from self._pairs([(name, side)], node)
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            defaulted = positional[len(positional) - len(node.defaults):]
            pairs = [(arg.arg, default) for arg, default in zip(defaulted, node.defaults, strict=True)]
            pairs += [(arg.arg, default) for arg, default in zip(node.kwonlyargs, node.kw_defaults,
                                                                  strict=True) if default]
            for name, default in pairs:
                yield from self._pairs([(name, default)], default)
        elif isinstance(node, ast.Constant):
            match = _URL_CREDENTIALS.match(node.value) if isinstance(node.value, str) else None
            if match and _looks_like_secret(match.group(1)) \
                    and match.group(1).lower() not in _CREDENTIAL_NOUNS | {"pass"}:  # "user:password@"
                yield Hit(node, "MEDIUM", "HIGH")

    def _pairs(self, pairs: Iterable[tuple[str | None, ast.AST | None]], at: ast.AST) -> Iterator[Hit]:
        for name, value in pairs:
            text = _literal_text(value)
            if not (name and text is not None and is_credential_name(name)
                    and _looks_like_secret(text, name)):
                continue
            if _noun_phrase(_words(name)) == ["token"] and not _RANDOM_LOOKING.match(text):
                continue  # a bare TOKEN is often a marker ("__fn_ph"); a real one looks random
            yield Hit(at, "MEDIUM", "MEDIUM")
            return

    def _header(self, key: str | None, value: ast.AST) -> Iterator[Hit]:
        text = _literal_text(value)
        if key and text is not None and key.lower() in {"authorization", "proxy-authorization"}:
            scheme = _AUTH_SCHEMES.match(text.strip())
            if scheme and _looks_like_secret(scheme.group(2)):
                yield Hit(value, "MEDIUM", "HIGH")

    def _call(self, node: ast.Call, scope: Scope) -> Iterator[Hit]:
        for keyword in node.keywords:
            if keyword.arg == "auth" and isinstance(keyword.value, ast.Tuple | ast.List) \
                    and len(keyword.value.elts) == 2:
                yield from self._secret_arg(keyword.value.elts[1])
            else:
                yield from self._pairs([(keyword.arg, keyword.value)], keyword.value)
        qualified = scope.qualified(node.func)
        if qualified in _ENV_GETTERS and len(node.args) >= 2:  # a fallback value is hard-coded
            env_name = _literal_text(node.args[0])
            if env_name and is_credential_name(env_name):
                yield from self._secret_arg(node.args[1], "MEDIUM")
        elif qualified in _BASIC_AUTH and len(node.args) >= 2:
            yield from self._secret_arg(node.args[1])
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "login" and len(node.args) >= 2:
            yield from self._secret_arg(node.args[1])  # smtplib, ftplib, imaplib: login(user, pw)

    @staticmethod
    def _secret_arg(expr: ast.AST, confidence: str = "HIGH") -> Iterator[Hit]:
        text = _literal_text(expr)
        if text is not None and _looks_like_secret(text):
            yield Hit(expr, "MEDIUM", confidence)


# --- CWE-330: weak randomness for secrets -----------------------------------------------------

_WEAK_RANDOM = frozenset(
    {f"random.{f}" for f in ("random", "randint", "randrange", "choice", "choices", "sample",
                             "getrandbits", "randbytes", "uniform", "shuffle", "triangular")}
    | {f"numpy.random.{f}" for f in ("rand", "randint", "random", "choice", "bytes",
                                     "random_sample", "permutation", "shuffle")}
)


def _weak_calls(expr: ast.AST | None, scope: Scope) -> Iterator[ast.Call]:
    if expr is None:
        return
    for node in ast.walk(expr):
        if isinstance(node, ast.Call) and scope.qualified(node.func) in _WEAK_RANDOM:
            yield node


@RULES.register("SLP002")
class WeakRandomSecret:
    """`random` (a Mersenne Twister, predictable from its output) used to make a secret: the
    value goes into a secret-named variable, attribute, keyword or dict key, is returned by a
    function that makes a secret, or `random.shuffle` scrambles one. `random` for a simulation
    or a sample is fine, and `secrets` or `random.SystemRandom()` are never flagged. bandit's
    B311 flags every `random` call, at LOW severity, whatever it is for."""

    rule_id = "SLP002"
    name = "weak randomness for a secret"
    cwe = "CWE-330"
    node_types: tuple[type[ast.AST], ...] = (
        ast.Assign, ast.AnnAssign, ast.AugAssign, ast.keyword, ast.Dict, ast.FunctionDef,
        ast.AsyncFunctionDef, ast.Call,
    )
    needles = ("random",)  # `import random`, `from random import choice`, `np.random`

    def check(self, node: Any, scope: Scope) -> Iterator[Hit]:
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [_target_name(t) for t in targets]
            names += [_target_name(e) for t in targets if isinstance(t, ast.Tuple) for e in t.elts]
            if any(name and is_secret_name(name) for name in names):
                yield from self._hits(node.value, scope)
        elif isinstance(node, ast.keyword):
            if node.arg and is_secret_name(node.arg):
                yield from self._hits(node.value, scope)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                name = _literal_text(key)
                if name and is_secret_name(name):
                    yield from self._hits(value, scope)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if is_secret_maker(node.name):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return):
                        yield from self._hits(inner.value, scope)
        elif isinstance(node, ast.Call) and scope.qualified(node.func) in {
                "random.shuffle", "numpy.random.shuffle"} and node.args:
            name = _target_name(node.args[0])
            if name and is_secret_name(name):
                yield Hit(node, "MEDIUM", "MEDIUM")

    @staticmethod
    def _hits(expr: ast.AST | None, scope: Scope) -> Iterator[Hit]:
        for call in _weak_calls(expr, scope):
            yield Hit(call, "MEDIUM", "MEDIUM")


# --- CWE-611: XML external entities -----------------------------------------------------------

_LXML_PARSERS = frozenset({"lxml.etree.XMLParser", "lxml.etree.ETCompatXMLParser",
                           "lxml.etree.XMLPullParser", "lxml.etree.iterparse",
                           "lxml.objectify.makeparser"})
_LXML_PARSE_FUNCTIONS = {  # function -> index of its positional `parser` argument
    "lxml.etree.parse": 1, "lxml.etree.fromstring": 1, "lxml.etree.XML": 1,
    "lxml.etree.fromstringlist": 1, "lxml.etree.XMLID": 1, "lxml.etree.XMLDTDID": 1,
    "lxml.objectify.parse": 1, "lxml.objectify.fromstring": 1, "lxml.objectify.XML": 1,
}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_false(expr: ast.expr | None) -> bool:
    return isinstance(expr, ast.Constant) and expr.value in (False, 0)


@RULES.register("SLP003")
class LxmlExternalEntities:
    """An lxml parser that resolves entities: `XMLParser`/`iterparse` without
    `resolve_entities=False` (lxml before 5.0 resolves external entities by default, and CodeQL
    counts the default as vulnerable), or `etree.parse`/`fromstring`/`XML` with lxml's default
    parser. bandit has no lxml check since B320 was removed. `defusedxml.lxml` is not lxml."""

    rule_id = "SLP003"
    name = "lxml parser resolving external entities"
    cwe = "CWE-611"
    node_types: tuple[type[ast.AST], ...] = (ast.Call,)
    needles = ("lxml",)

    def check(self, node: Any, scope: Scope) -> Iterator[Hit]:
        qualified = scope.qualified(node.func)
        if qualified in _LXML_PARSERS:
            resolve = _keyword(node, "resolve_entities")
            if resolve is None:
                yield Hit(node, "MEDIUM", "MEDIUM")
            elif not (_is_false(resolve) or _literal_text(resolve) == "internal"):
                yield Hit(node, "HIGH", "HIGH")  # asked for explicitly
        elif qualified in _LXML_PARSE_FUNCTIONS:
            position = _LXML_PARSE_FUNCTIONS[qualified]
            has_parser = len(node.args) > position or _keyword(node, "parser") is not None
            if not has_parser:
                yield Hit(node, "MEDIUM", "MEDIUM")


_SAX_ENTITY_FEATURES = frozenset({
    "xml.sax.handler.feature_external_ges", "xml.sax.handler.feature_external_pes",
    "feature_external_ges", "feature_external_pes", "handler.feature_external_ges",
    "handler.feature_external_pes",
    "http://xml.org/sax/features/external-general-entities",
    "http://xml.org/sax/features/external-parameter-entities",
})


@RULES.register("SLP004")
class SaxExternalEntities:
    """A SAX parser (or a pulldom one built on it) told to load external entities:
    `parser.setFeature(feature_external_ges, True)`. Python's SAX parsers do not by default;
    this turns the protection off."""

    rule_id = "SLP004"
    name = "SAX parser with external entities enabled"
    cwe = "CWE-611"
    node_types: tuple[type[ast.AST], ...] = (ast.Call,)
    needles = ("setfeature",)

    def check(self, node: Any, scope: Scope) -> Iterator[Hit]:
        if not (isinstance(node.func, ast.Attribute) and node.func.attr == "setFeature"
                and len(node.args) == 2):
            return
        feature, value = node.args
        name = _literal_text(feature) or scope.qualified(feature)
        if name in _SAX_ENTITY_FEATURES and not _is_false(value):
            yield Hit(node, "HIGH", "HIGH")
