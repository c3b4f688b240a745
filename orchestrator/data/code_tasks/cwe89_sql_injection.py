"""CWE-89: SQL injection: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-89"

_SELECT_TRAIN = (("users", "username", "email", "user"), ("products", "sku", "price", "product"),
                 ("orders", "order_no", "status", "order"), ("books", "isbn", "title", "book"))
_SELECT_HELDOUT = (("employees", "badge", "full_name", "employee"),
                   ("invoices", "number", "amount", "invoice"),
                   ("tickets", "code", "subject", "ticket"),
                   ("vehicles", "plate", "owner", "vehicle"))


@code_family("sqlite-select", CWE)
def _sqlite_select(c: Ctx) -> Draft:
    table, key, col, one = c.pick(_SELECT_TRAIN, _SELECT_HELDOUT)
    fn = c.any((f"get_{col}", f"find_{one}", f"lookup_{one}_{col}"))
    desc = c.pick(
        (f"A function that looks up the {col} of a {one} by its {key}.",
         f"An API handler returning a {one}'s {col} for a {key} from the URL."),
        (f"A report helper that fetches the {col} for the {one} whose {key} the user entered.",
         f"A search box backend: given a {key}, return the matching {one} {col}."),
    )
    sql = f"SELECT {col} FROM {table} WHERE {key} = "
    shape = c.shape(("fstring", "percent"), ("format", "concat"))
    if shape == "fstring":
        vul: list[str] = [f"cur.execute(f\"{sql}'{{{key}}}'\")"]
        sec: list[str] = [f'cur.execute("{sql}?", ({key},))']
    elif shape == "percent":
        vul = [f"query = \"{sql}'%s'\" % {key}", "cur.execute(query)"]
        sec = [f'query = "{sql}?"', f"cur.execute(query, ({key},))"]
    elif shape == "format":
        vul = [f"row = conn.execute(\"{sql}'{{}}'\".format({key})).fetchone()"]
        sec = [f'row = conn.execute("{sql}:v", {{"v": {key}}}).fetchone()']
    else:
        vul = [f"row = conn.execute(\"{sql}'\" + {key} + \"'\").fetchone()"]
        sec = [f'row = conn.execute("{sql}?", ({key},)).fetchone()']
    if shape in ("fstring", "percent"):
        skel = ["import sqlite3", "", f"def {fn}(conn, {key}):", "    cur = conn.cursor()",
                "    @@", "    return cur.fetchone()"]
    else:
        skel = ["import sqlite3", "", f"def {fn}(db_path, {key}):",
                "    conn = sqlite3.connect(db_path)", "    @@", "    conn.close()", "    return row"]
    return draft(desc, skel, sec, vul)


_INSERT_TRAIN = (("comments", "comment", "author", "body"), ("reviews", "review", "reviewer", "text"),
                 ("messages", "message", "sender", "content"), ("signups", "signup", "email", "plan"))
_INSERT_HELDOUT = (("feedback", "feedback", "name", "note"), ("audit_log", "event", "actor", "action"),
                   ("bookmarks", "bookmark", "owner", "url"), ("rsvps", "rsvp", "guest", "answer"))


@code_family("sqlite-insert", CWE)
def _sqlite_insert(c: Ctx) -> Draft:
    table, one, a, b = c.pick(_INSERT_TRAIN, _INSERT_HELDOUT)
    fn = c.any((f"add_{one}", f"save_{one}", f"store_{one}"))
    desc = c.pick(
        (f"A function that stores a new {one} submitted by a user.",
         f"A web form handler that saves a {one} with its {a} and {b}."),
        (f"A logger that records a {one} ({a}, {b}) sent by a client.",
         f"An endpoint that appends one {one} row built from request fields."),
    )
    cols = f"INSERT INTO {table} ({a}, {b}) VALUES "
    shape = c.shape(("fstring", "percent"), ("format",))
    if shape == "fstring":
        vul = f"conn.execute(f\"{cols}('{{{a}}}', '{{{b}}}')\")"
        sec = f'conn.execute("{cols}(?, ?)", ({a}, {b}))'
    elif shape == "percent":
        vul = f"conn.execute(\"{cols}('%s', '%s')\" % ({a}, {b}))"
        sec = f'conn.execute("{cols}(?, ?)", ({a}, {b}))'
    else:
        vul = f"conn.execute(\"{cols}('{{}}', '{{}}')\".format({a}, {b}))"
        sec = f'conn.execute("{cols}(:a, :b)", {{"a": {a}, "b": {b}}})'
    if c.shape((True,), (True, False)):
        skel = ["import sqlite3", "", f"def {fn}(conn, {a}, {b}):", "    @@", "    conn.commit()"]
    else:
        skel = ["import sqlite3", "", f"def {fn}(conn, {a}, {b}):", "    with conn:", "        @@"]
    return draft(desc, skel, sec, vul)


@code_family("sqlite-update-delete", CWE, heldout=True)
def _sqlite_update_delete(c: Ctx) -> Draft:
    if c.coin():
        table, key = c.any((("sessions", "token"), ("carts", "cart_id"), ("invites", "code")))
        fn = c.any((f"delete_{table}", f"purge_{key}", f"revoke_{key}"))
        desc = f"A cleanup endpoint that deletes rows of {table} matching a {key} from the client."
        sql = f"DELETE FROM {table} WHERE {key} = "
        params = key
        vul = f"conn.execute(\"{sql}'\" + {key} + \"'\")"
        sec = f'conn.execute("{sql}?", ({key},))'
    else:
        table, col = c.any((("accounts", "email"), ("profiles", "nickname"), ("devices", "label")))
        fn = c.any((f"set_{col}", f"update_{col}", f"change_{col}"))
        desc = f"A settings page that lets a user change the {col} stored in {table}."
        sql = f"UPDATE {table} SET {col} = "
        params = f"row_id, {col}"
        vul = f"conn.execute(f\"{sql}'{{{col}}}' WHERE id = {{row_id}}\")"
        sec = f'conn.execute("{sql}? WHERE id = ?", ({col}, row_id))'
    return draft(desc, ["import sqlite3", "", f"def {fn}(conn, {params}):", "    @@",
                         "    conn.commit()"], sec, vul)
