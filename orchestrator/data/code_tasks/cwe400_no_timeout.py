"""CWE-400: uncontrolled resource consumption (HTTP without timeout): task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-400"


@code_family("requests-get-timeout", CWE)
def _requests_get_timeout(c: Ctx) -> Draft:
    fn = c.pick(("fetch_json", "get_weather", "load_prices", "fetch_profile"),
                ("poll_status", "read_feed", "query_inventory", "pull_rates"))
    url = c.pick(("url", "endpoint", "api_url"), ("feed_url", "status_url", "source"))
    desc = c.pick(
        ("A client that fetches JSON from a third-party API.",
         "A function that downloads the current weather from a web service.",
         "A price tracker that downloads the latest prices from a vendor API.",
         "A profile page that loads user data from a remote service."),
        ("A poller that reads a job's status from a remote service.",
         "A feed reader that downloads a JSON feed from a publisher.",
         "A warehouse tool that queries stock levels from a supplier API.",
         "A finance widget pulling exchange rates from a public API."),
    )
    t = c.any(("5", "10", "30"))
    extra = c.shape(("", ", params=params"), ("", ', headers={"Accept": "application/json"}'))
    params = f"{url}, params" if extra == ", params=params" else url
    skel = ["import requests", "", f"def {fn}({params}):", "    @@", "    resp.raise_for_status()",
            "    return resp.json()"]
    return draft(desc, skel, f"resp = requests.get({url}{extra}, timeout={t})",
                 f"resp = requests.get({url}{extra})")


@code_family("requests-send-timeout", CWE)
def _requests_send_timeout(c: Ctx) -> Draft:
    verb = c.pick(("post", "put"), ("patch", "delete"))
    fn = c.pick(("send_event", "submit_order", f"{verb}_record", "push_update"),
                (f"{verb}_item", f"remote_{verb}", "sync_entry", "notify_partner"))
    url = c.pick(("url", "endpoint", "hook_url"), ("target_url", "api", "resource"))
    desc = c.pick(
        ("A webhook sender that posts an event to a customer's URL.",
         "A checkout step that submits an order to a fulfilment API.",
         f"A client that sends a record to a REST API with HTTP {verb.upper()}.",
         "An agent that pushes status updates to a monitoring service."),
        (f"A sync client that issues an HTTP {verb.upper()} for one item on a remote API.",
         f"A cleanup job calling {verb.upper()} on a partner service.",
         "A replication worker that mirrors one entry to a remote store.",
         "A notifier that informs a partner system about a change."),
    )
    t = c.any(("5", "10", "30"))
    if verb == "delete":
        params, extra = url, ""
    else:
        params, extra = f"{url}, payload", ", json=payload"
    tail = c.any(("    return resp.status_code", "    return resp.ok"))
    skel = ["import requests", "", f"def {fn}({params}):", "    @@", tail]
    return draft(desc, skel, f"resp = requests.{verb}({url}{extra}, timeout={t})",
                 f"resp = requests.{verb}({url}{extra})")
