"""The project's own oracle rules (orchestrator.evaluate.rules), through the real oracle: bandit
runs on every case too, so a rule that duplicated or contradicted bandit would show here."""

from __future__ import annotations

import ast

import pytest

from orchestrator.evaluate.oracle import BanditOracle, OracleVerdict
from orchestrator.evaluate.rules import (
    RULES,
    Finding,
    is_credential_name,
    is_secret_maker,
    is_secret_name,
    scan,
)

CLEAN = OracleVerdict(vulnerable=False, unparsable=False, cwes=(), findings=())

# rule id -> (vulnerable code the rule must catch, safe look-alike that must have no finding)
VULNERABLE: dict[str, list[str]] = {
    "SLP001": [  # CWE-798, hard-coded credentials
        "DB_PASSWORD = 'hunter2'\n",
        "API_KEY = 'sk-live-4f9a0c2e71b84d'\n",
        "class Config:\n    SECRET_KEY: str = 'dev-secret-123'\n",
        "from flask import Flask\napp = Flask(__name__)\napp.config['SECRET_KEY'] = 'k3y!'\n",
        "from flask import Flask\napp = Flask(__name__)\napp.secret_key = b'\\x01\\x02abc'\n",
        "import psycopg2\nconn = psycopg2.connect(host='db', user='admin', password='s3cret')\n",
        "def check(user, password):\n    return user == 'admin' and password == 'letmein'\n",
        "def connect(host, user='root', password='toor'):\n    return (host, user, password)\n",
        "import requests\nr = requests.get(u, headers={'Authorization': 'Bearer eyJhbGciOi.x.y'}, timeout=5)\n",
        "import requests\nr = requests.get(u, auth=('admin', 'pa55word'), timeout=5)\n",
        "from requests.auth import HTTPBasicAuth\nauth = HTTPBasicAuth('admin', 'pa55word')\n",
        "import smtplib\ns = smtplib.SMTP_SSL('mail')\ns.login('me@example.com', 'mailpass1')\n",
        "from sqlalchemy import create_engine\n"
        "engine = create_engine('postgresql://app:Tr0ub4dor@db:5432/app')\n",
        "import os\npassword = os.environ.get('DB_PASSWORD', 'fallback-pw')\n",
        "settings = {'user': 'svc', 'api_token': 'ghp_abcdef0123456789'}\n",
        "import boto3\ns3 = boto3.client('s3', aws_access_key_id='AKIA0000', aws_secret_access_key='wJalrX')\n",
        "TOKEN = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'\n",
        "def authorized(token):\n    return token == 'token1234'\n",
    ],
    "SLP002": [  # CWE-330, weak randomness for a secret
        "import random\nimport string\n"
        "token = ''.join(random.choice(string.ascii_letters) for _ in range(32))\n",
        "import random\n\ndef generate_password(n=12):\n"
        "    chars = 'abcdefghijklmnopqrstuvwxyz0123456789'\n"
        "    return ''.join(random.choices(chars, k=n))\n",
        "import random\nsalt = random.getrandbits(128).to_bytes(16, 'big')\n",
        "from random import randint\nnonce = randint(0, 2**64)\n",
        "import random\nreset_code = str(random.randint(100000, 999999))\n",
        "import random\nsession = {'session_id': random.random()}\n",
        "import hashlib\nimport random\n"
        "digest = hashlib.pbkdf2_hmac('sha256', b'pw', salt=random.randbytes(16), iterations=600000)\n",
        "import random\n\ndef make_api_key_for(user):\n    return '%032x' % random.getrandbits(128)\n",
        "import numpy as np\nkey_bytes = np.random.bytes(32)\nsecret_key = key_bytes\n"
        "aes_key = np.random.bytes(16)\n",
        "import random\npassword = list('abc123XYZ')\nrandom.shuffle(password)\n",
        "import random\nuser.otp = random.randrange(10**6)\n",
    ],
    "SLP003": [  # CWE-611, lxml resolving external entities
        "from lxml import etree\nparser = etree.XMLParser(resolve_entities=True)\n"
        "root = etree.fromstring(data, parser)\n",
        "from lxml import etree\nroot = etree.parse(path).getroot()\n",
        "import lxml.etree\nroot = lxml.etree.fromstring(data)\n",
        "from lxml.etree import XML\nroot = XML(data)\n",
        "from lxml import etree\nparser = etree.XMLParser(load_dtd=True)\nroot = etree.parse(f, parser)\n",
        "from lxml import etree\nfor _, el in etree.iterparse(path):\n    print(el.tag)\n",
    ],
    "SLP004": [  # CWE-611, SAX with external entities turned on
        "import xml.sax\nfrom xml.sax.handler import feature_external_ges\n"
        "parser = xml.sax.make_parser()\nparser.setFeature(feature_external_ges, True)\nparser.parse(f)\n",
        "from xml.dom import pulldom\nfrom xml.sax import handler, make_parser\n"
        "parser = make_parser()\nparser.setFeature(handler.feature_external_ges, 1)\n"
        "doc = pulldom.parse(f, parser=parser)\n",
        "def configure(parser):\n"
        "    parser.setFeature('http://xml.org/sax/features/external-general-entities', True)\n",
    ],
}
CWE_OF_RULE = {"SLP001": "CWE-798", "SLP002": "CWE-330", "SLP003": "CWE-611", "SLP004": "CWE-611"}

SAFE: dict[str, list[str]] = {
    "SLP001": [
        "import os\npassword = os.environ['DB_PASSWORD']\n",
        "import os\napi_key = os.getenv('API_KEY')\n",
        "import os\npassword = os.environ.get('DB_PASSWORD', '')\n",
        "password = input('Password: ')\n",
        "PASSWORD_PROMPT = 'Enter your password:'\n",
        "password_length = 16\ntoken_url = 'https://auth.example.com/token'\n",
        "eos_token = '</s>'\npad_token = '[PAD]'\n",
        "cache_key = 'user:42'\nkey = 'name'\n",
        "PASSWORD_FIELD = 'password'\nPASSWORD = 'password'\n",
        "private_key = '/etc/ssl/private/server.key'\n",
        "DSN = 'postgresql://{user}:{password}@db/app'\n",
        "import smtplib\n\ndef f(host, user, password):\n"
        "    s = smtplib.SMTP_SSL(host)\n    s.login(user, password)\n",
        "import requests\nr = requests.get(u, headers={'Authorization': f'Bearer {tok}'}, timeout=5)\n",
        "def check(password, stored):\n    return password == stored\n",
        "def connect(host, password=None):\n    return host\n",
        "import secrets\ntoken = secrets.token_hex(16)\n",
        "if token_type == 'bearer':\n    pass\n",
        "password = '<your password here>'\n",
        "API_KEY = 'YOUR_API_KEY'\nclient = make_client(api_key='fake-key')\nsecret = '********'\n",
        "CREDENTIALS = 'GOOGLE_APPLICATION_CREDENTIALS'\nAUTH_TOKEN = 'X-Auth-Token'\n"
        "conf = {'ssl_password': 'ssl.key.password'}\n",
        "HEADER_ACCESS_TOKEN = 'X-Xet-Access-Token'\nTOKEN_ENV = 'HF_TOKEN'\n",
        "if 'Code' in credentials:\n    pass\n",
        "params = {'input_token': 'next_token', 'page_token': 'abc123def456'}\n"
        "TOKEN = '__marker'\nembed_tokens = 'embedding_rowwise'\n",
        "headers = {'Access-Control-Allow-Credentials': 'true'}\n",
        "DSN = 'ftp://username:password@host/path'\n",
    ],
    "SLP002": [
        "import secrets\ntoken = secrets.token_hex(16)\n",
        "import secrets\nimport string\n"
        "password = ''.join(secrets.choice(string.ascii_letters) for _ in range(16))\n",
        "import random\nrng = random.SystemRandom()\ntoken = ''.join(rng.choice('abc') for _ in range(32))\n",
        "import random\ntoken = random.SystemRandom().getrandbits(128)\n",
        "import random\n\ndef simulate(n):\n    return sum(random.random() < 0.5 for _ in range(n))\n",
        "import random\nsample = random.sample(range(100), 10)\nrandom.shuffle(deck)\n",
        "import random\ndelay = random.uniform(0.1, 0.5)\npassword_length = random.randint(12, 16)\n",
        "import random\n\ndef random_key(d):\n    return random.choice(list(d))\n",
        "import random\nkey = random.choice(list(table))\n",
        "import os\nsalt = os.urandom(16)\n",
        "import random\ntoken_count = random.randint(1, 5)\n",
    ],
    "SLP003": [
        "from lxml import etree\nparser = etree.XMLParser(resolve_entities=False)\n"
        "root = etree.fromstring(data, parser)\n",
        "from lxml import etree\nparser = etree.XMLParser(resolve_entities=False, no_network=True)\n"
        "root = etree.parse(path, parser=parser).getroot()\n",
        "from defusedxml.lxml import fromstring\nroot = fromstring(data)\n",
        "import defusedxml.ElementTree as ET\nroot = ET.fromstring(data)\n",
        "from lxml import etree\nfor _, el in etree.iterparse(path, resolve_entities=False):\n"
        "    print(el.tag)\n",
        "from lxml import html\ndoc = html.fromstring(page)\n",
        "from lxml import etree\nroot = etree.Element('root')\ntext = etree.tostring(root)\n",
    ],
    "SLP004": [
        "def configure(parser):\n    parser.setFeature('http://xml.org/sax/features/namespaces', True)\n",
        "def configure(parser, feature_external_ges):\n    parser.setFeature(feature_external_ges, False)\n",
        "import defusedxml.sax\ndefusedxml.sax.parse(f, handler)\n",
    ],
}

VULNERABLE_CASES = [(rule, code) for rule, codes in VULNERABLE.items() for code in codes]
SAFE_CASES = [(rule, code) for rule, codes in SAFE.items() for code in codes]


@pytest.fixture(scope="module")
def oracle() -> BanditOracle:
    return BanditOracle()


def test_every_rule_has_cases_both_ways() -> None:
    assert set(VULNERABLE) == set(SAFE) == set(RULES.names()) == set(CWE_OF_RULE)
    for rule_id, rule in RULES.items():
        assert rule.rule_id == rule_id and rule.cwe == CWE_OF_RULE[rule_id]
        assert rule.needles and all(n == n.lower() for n in rule.needles)


@pytest.mark.parametrize(("rule_id", "code"), VULNERABLE_CASES,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(VULNERABLE_CASES)])
def test_vulnerable_is_caught_with_its_cwe(oracle: BanditOracle, rule_id: str, code: str) -> None:
    (verdict,) = oracle.score([code])
    cwe = CWE_OF_RULE[rule_id]
    assert verdict.vulnerable and cwe in verdict.cwes, verdict
    ours = [f for f in verdict.findings if f.startswith(f"{rule_id}:")]
    assert ours and all(f.endswith(f":{cwe}") and f.split(":")[1] in ("MEDIUM", "HIGH")
                        for f in ours), verdict


@pytest.mark.parametrize(("rule_id", "code"), SAFE_CASES,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(SAFE_CASES)])
def test_safe_look_alike_has_no_finding(oracle: BanditOracle, rule_id: str, code: str) -> None:
    assert oracle.score([code]) == [CLEAN]


def test_bandit_alone_misses_what_the_rules_add() -> None:
    """Why the rules exist: at MEDIUM, bandit alone flags none of the credential, randomness
    or lxml cases (SAX is its B317, kept as is)."""
    plain = BanditOracle(rules=())
    for rule_id in ("SLP001", "SLP002", "SLP003"):
        missed = [v for v in plain.score(VULNERABLE[rule_id]) if CWE_OF_RULE[rule_id] not in v.cwes]
        assert len(missed) == len(VULNERABLE[rule_id]), rule_id


def test_findings_carry_rule_cwe_severity_confidence_and_line() -> None:
    code = "import random\n\nx = 1\ntoken = random.random()\nAPI_KEY = 'abc123def'\n"
    assert scan(ast.parse(code)) == [
        Finding("SLP002", "CWE-330", "MEDIUM", "MEDIUM", line=4, col=8),
        Finding("SLP001", "CWE-798", "MEDIUM", "MEDIUM", line=5, col=0),
    ]
    # the source prefilter skips rules that cannot match, and never changes what matches
    assert scan(ast.parse(code), source=code) == scan(ast.parse(code))
    assert scan(ast.parse("x = 1\n"), source="x = 1\n") == []
    assert scan(ast.parse(code), rules=[RULES.get("SLP001")]) == [
        Finding("SLP001", "CWE-798", "MEDIUM", "MEDIUM", line=5, col=0)]


def test_oracle_options_apply_to_rules() -> None:
    code = "from lxml import etree\nroot = etree.parse(path)\n"  # SLP003 at MEDIUM
    assert BanditOracle().score([code])[0].findings == ("SLP003:MEDIUM:CWE-611",)
    assert not BanditOracle(severity="HIGH").score([code])[0].vulnerable
    assert not BanditOracle(ignore_tests=frozenset({"SLP003"})).score([code])[0].vulnerable
    assert not BanditOracle(rules=["SLP001"]).score([code])[0].vulnerable
    # `# nosec` silences neither bandit nor the rules
    assert BanditOracle().score([code.replace("\n", "  # nosec\n")])[0].vulnerable


def test_findings_are_in_line_order_across_bandit_and_rules(oracle: BanditOracle) -> None:
    code = "import os\nimport random\npassword = 'abc123!'\nos.system(cmd)\ntoken = random.random()\n"
    (verdict,) = oracle.score([code])
    assert verdict.findings == ("SLP001:MEDIUM:CWE-798", "B605:HIGH:CWE-78", "SLP002:MEDIUM:CWE-330")
    assert verdict.cwes == ("CWE-330", "CWE-78", "CWE-798")


@pytest.mark.parametrize(("name", "credential", "secret"), [
    ("password", True, True), ("DB_PASSWORD", True, True), ("dbPass", True, True),
    ("apiKey", True, True), ("SECRET_KEY", True, True), ("client_secret", True, True),
    ("auth_token", True, True), ("token_hex", True, True), ("tokens", True, True),
    ("password_length", False, False), ("token_url", False, False), ("eos_token", False, False),
    ("cache_key", False, False), ("key", False, False), ("bypass", False, False),
    ("salt", False, True), ("nonce", False, True), ("reset_code", False, True),
    ("session_id", False, True), ("iv", False, True), ("status_code", False, False),
    ("user_id", False, False),
])
def test_secret_names(name: str, credential: bool, secret: bool) -> None:
    assert is_credential_name(name) is credential
    assert is_secret_name(name) is secret


def test_secret_makers() -> None:
    for name in ("generate_token", "make_password_for_user", "new_key", "gen_salt",
                 "create_session_id", "reset_code", "generateApiKey"):
        assert is_secret_maker(name), name
    for name in ("random_key", "shuffle_deck", "simulate", "generate_report", "pick_key"):
        assert not is_secret_maker(name), name
