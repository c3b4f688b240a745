"""CWE-611: XML external entities: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-611"

_XML_TRAIN = (("order", "total"), ("invoice", "amount"), ("feed", "title"))
_XML_HELDOUT = (("shipment", "weight"), ("survey", "score"), ("manifest", "version"))


@code_family("xml-etree", CWE)
def _xml_etree(c: Ctx) -> Draft:
    doc, field = c.pick(_XML_TRAIN, _XML_HELDOUT)
    fn = c.any((f"parse_{doc}", f"{doc}_{field}", f"read_{doc}"))
    desc = c.pick(
        (f"A function that reads the {field} from an XML {doc} uploaded by a user.",
         f"An API that accepts an XML {doc} and returns its {field}."),
        (f"An importer that extracts the {field} of an XML {doc} from a partner.",
         f"A webhook that parses the {field} out of a posted XML {doc}."),
    )
    shape = c.shape(("alias", "qualified"), ("file", "from_import"))
    if shape == "from_import":
        skel = ["@@", "", f"def {fn}(data):", "    root = fromstring(data)",
                f'    return root.findtext("{field}")']
        return draft(desc, skel, "from defusedxml.ElementTree import fromstring",
                     "from xml.etree.ElementTree import fromstring")
    if shape == "qualified":
        skel = ["import defusedxml.ElementTree", "import xml.etree.ElementTree", "",
                f"def {fn}(data):", "    @@", f'    return root.findtext("{field}")']
        return draft(desc, skel, "root = defusedxml.ElementTree.fromstring(data)",
                     "root = xml.etree.ElementTree.fromstring(data)")
    if shape == "alias":
        body = ["    root = ET.fromstring(data)"]
        arg = "data"
    else:
        body = ["    root = ET.parse(path).getroot()"]
        arg = "path"
    skel = ["@@", "", f"def {fn}({arg}):", *body, f'    return root.findtext("{field}")']
    return draft(desc, skel, "import defusedxml.ElementTree as ET",
                 "import xml.etree.ElementTree as ET")


@code_family("xml-minidom", CWE)
def _xml_minidom(c: Ctx) -> Draft:
    doc, field = c.pick(_XML_TRAIN, _XML_HELDOUT)
    fn = c.pick((f"{field}_values", f"collect_{field}", f"list_{field}s"),
                (f"gather_{field}", f"{field}_entries", f"extract_{field}s"))
    data = c.pick(("data", "xml_text"), ("payload", "document"))
    desc = c.pick(
        (f"A function that lists every {field} element in an XML {doc} from a user.",
         f"An upload handler that collects {field} values from an XML {doc}.",
         f"An API endpoint returning all {field} entries of a posted XML {doc}."),
        (f"A report builder that gathers all {field} entries of a received XML {doc}.",
         f"A converter that pulls {field} nodes out of an untrusted XML {doc}.",
         f"A partner integration reading every {field} from an XML {doc}."),
    )
    nodes = f'dom.getElementsByTagName("{field}")'
    if c.coin():
        body = [f"    nodes = {nodes}", "    return [n.firstChild.data for n in nodes]"]
    else:
        body = [f"    return [n.firstChild.data for n in {nodes}]"]
    skel = ["@@", "", f"def {fn}({data}):", f"    dom = minidom.parseString({data})", *body]
    return draft(desc, skel, "from defusedxml import minidom", "from xml.dom import minidom")


@code_family("xml-iterparse", CWE, heldout=True)
def _xml_iterparse(c: Ctx) -> Draft:
    tag = c.any(("record", "item", "row", "entry"))
    fn = c.any((f"count_{tag}s", "stream_count", f"tally_{tag}s"))
    src = c.any(("path", "source", "stream"))
    desc = c.any((f"A function that counts {tag} elements in a large XML file from a customer.",
                  f"A streaming importer that tallies {tag} entries of an uploaded XML export.",
                  f"A data quality check counting {tag} nodes in a partner's XML dump."))
    skel = ["@@", "", f"def {fn}({src}):", "    total = 0", f"    for _, elem in iterparse({src}):",
            f'        if elem.tag == "{tag}":', "            total += 1", "    return total"]
    return draft(desc, skel, "from defusedxml.ElementTree import iterparse",
                 "from xml.etree.ElementTree import iterparse")
