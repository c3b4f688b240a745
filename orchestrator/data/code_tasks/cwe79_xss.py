"""CWE-79: cross-site scripting: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-79"


@code_family("jinja-autoescape", CWE)
def _jinja_autoescape(c: Ctx) -> Draft:
    obj = c.pick(("user", "comment", "post"), ("review", "profile", "note"))
    fn = c.pick((f"render_{obj}", f"show_{obj}"), (f"page_for_{obj}", f"display_{obj}"))
    folder = c.pick(("templates", "views"), ("pages", "html"))
    desc = c.pick(
        (f"A web view that renders a {obj} page from a Jinja2 template.",
         f"A Flask helper that turns a {obj} object into HTML with Jinja2."),
        (f"A site generator that builds the HTML page of a {obj} using Jinja2.",
         f"An email preview that shows a {obj} through a Jinja2 template."),
    )
    shape = c.shape(("bool", "select"), ("from_string", "package"))
    if shape == "from_string":
        src = '"<p>{{ ' + obj + ' }}</p>"'
        skel = ["from jinja2 import BaseLoader, Environment", "", f"def {fn}({obj}):", "    @@",
                f"    return env.from_string({src}).render({obj}={obj})"]
        sec = "env = Environment(loader=BaseLoader(), autoescape=True)"
        vul = "env = Environment(loader=BaseLoader(), autoescape=False)"
        return draft(desc, skel, sec, vul)
    loader = f'loader=FileSystemLoader("{folder}")'
    imports = "from jinja2 import Environment, FileSystemLoader"
    if shape == "package":
        pkg = c.any(("webapp", "portal", "site"))
        loader = f'loader=PackageLoader("{pkg}", "{folder}")'
        imports = "from jinja2 import Environment, PackageLoader"
        shape = "bool"
    if shape == "bool":
        sec = f"env = Environment({loader}, autoescape=True)"
        vul = f"env = Environment({loader}, autoescape=False)"
    else:
        imports += ", select_autoescape"
        sec = f"env = Environment({loader}, autoescape=select_autoescape())"
        vul = f"env = Environment({loader})"
    skel = [imports, "", f"def {fn}({obj}):", "    @@",
            f'    template = env.get_template("{obj}.html")',
            f"    return template.render({obj}={obj})"]
    return draft(desc, skel, sec, vul)


_GREET_TRAIN = (("<p>Hello, ", "!</p>"), ("<h2>Welcome back, ", "</h2>"),
                ("<span class='user'>", "</span>"))
_GREET_HELDOUT = (("<div>Signed in as ", "</div>"), ("<b>Last search: ", "</b>"),
                  ("<li>Tag: ", "</li>"))


@code_family("markup-snippet", CWE)
def _markup_snippet(c: Ctx) -> Draft:
    pre, post = c.pick(_GREET_TRAIN, _GREET_HELDOUT)
    arg = c.pick(("name", "username", "nick"), ("query", "label", "tag"))
    fn = c.pick((f"greet_{arg}", f"{arg}_banner"), (f"{arg}_html", f"format_{arg}"))
    desc = c.pick(
        (f"A Flask helper that greets the user by a {arg} taken from the request.",
         f"A widget that shows a {arg} typed by the visitor inside an HTML tag."),
        (f"A template filter that wraps a user-supplied {arg} in markup.",
         f"A sidebar fragment echoing the {arg} a visitor submitted."),
    )
    shape = c.shape(("fstring", "concat"), ("percent",))
    if shape == "fstring":
        vul = f'return Markup(f"{pre}{{{arg}}}{post}")'
        sec = f'return Markup("{pre}{{}}{post}").format({arg})'
    elif shape == "concat":
        vul = f'return Markup("{pre}" + {arg} + "{post}")'
        sec = f'return Markup("{pre}{{}}{post}").format({arg})'
    else:
        vul = f'return Markup("{pre}%s{post}" % {arg})'
        sec = f'return Markup("{pre}%s{post}") % {arg}'
    return draft(desc, ["from markupsafe import Markup", "", f"def {fn}({arg}):", "    @@"],
                 sec, vul)


@code_family("markup-link", CWE, heldout=True)
def _markup_link(c: Ctx) -> Draft:
    tag, a, b = c.any((('<a href="{}">{}</a>', "url", "label"),
                       ('<img src="{}" alt="{}">', "src", "caption"),
                       ('<a href="mailto:{}">{}</a>', "address", "name"),
                       ('<option value="{}">{}</option>', "value", "text")))
    fn = c.any(("make_link", "render_anchor", f"{a}_tag", "html_element"))
    desc = c.any((f"A helper that builds an HTML element from a user-supplied {a} and {b}.",
                  f"A profile page fragment linking a visitor-provided {a} with a {b}.",
                  f"A CMS widget rendering a {a} and {b} entered by an editor."))
    vul = "return Markup(f'" + tag.replace("{}", "{" + a + "}", 1).replace("{}", "{" + b + "}") + "')"
    sec = f"return Markup('{tag}').format({a}, {b})"
    return draft(desc, ["from markupsafe import Markup", "", f"def {fn}({a}, {b}):", "    @@"],
                 sec, vul)
