"""CWE-502: deserialisation of untrusted data: task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-502"


@code_family("pickle-untrusted", CWE)
def _pickle_untrusted(c: Ctx) -> Draft:
    fn = c.pick(("load_session", "decode_cookie", "restore_cart", "read_message"),
                ("parse_token", "unpack_payload", "load_profile_blob", "revive_state"))
    arg = c.pick(("cookie", "data", "payload"), ("blob", "token", "body"))
    desc = c.pick(
        ("A web app helper that restores session data from a browser cookie.",
         "A message consumer that decodes objects received from a client.",
         "A shop backend that restores a shopping cart sent by the browser."),
        ("A service that rebuilds a user profile from a blob sent over the network.",
         "A job runner that reads task parameters uploaded by users.",
         "A game server that restores a saved state uploaded by a player."),
    )
    imports = ["import json", "import pickle", ""]
    shape = c.shape(("b64", "bytes"), ("file", "hex"))
    if shape == "b64":
        skel = ["import base64", *imports, f"def {fn}({arg}):",
                f"    raw = base64.b64decode({arg})", "    @@"]
        return draft(desc, skel, "return json.loads(raw)", "return pickle.loads(raw)")
    if shape == "hex":
        skel = [*imports, f"def {fn}({arg}):", f"    raw = bytes.fromhex({arg})", "    @@",
                "    return obj"]
        return draft(desc, skel, "obj = json.loads(raw)", "obj = pickle.loads(raw)")
    if shape == "bytes":
        skel = [*imports, f"def {fn}({arg}):", "    @@"]
        return draft(desc, skel, f"return json.loads({arg})", f"return pickle.loads({arg})")
    skel = [*imports, f"def {fn}(path):", '    with open(path, "rb") as f:', "        @@"]
    return draft(desc, skel, "return json.load(f)", "return pickle.load(f)")


@code_family("yaml-load", CWE)
def _yaml_load(c: Ctx) -> Draft:
    fn, what = c.pick((("load_config", "config file"), ("read_settings", "settings file"),
                       ("parse_manifest", "manifest"), ("load_profile", "profile")),
                      (("load_pipeline", "pipeline definition"), ("read_job_spec", "job spec"),
                       ("parse_recipe", "recipe"), ("load_inventory", "inventory")))
    desc = c.pick(
        (f"A function that loads a YAML {what} uploaded by a user.",
         f"A CLI that reads a YAML {what} from a path given on the command line.",
         f"A web app that imports a YAML {what} provided by a customer."),
        (f"A scheduler that parses a YAML {what} submitted through an API.",
         f"A build tool that reads a YAML {what} from an untrusted repository.",
         f"An automation server that loads a YAML {what} sent by a client."),
    )
    loader = c.any(("yaml.Loader", "yaml.FullLoader", "yaml.UnsafeLoader"))
    shape = c.shape(("file", "file_var"), ("text", "text_return"))
    if shape in ("file", "file_var"):
        skel = ["import yaml", "", f"def {fn}(path):", "    with open(path) as f:", "        @@"]
        if shape == "file_var":
            skel.append("    return data")
            return draft(desc, skel, "data = yaml.safe_load(f)",
                         f"data = yaml.load(f, Loader={loader})")
        sec = c.any(("return yaml.safe_load(f)", "return yaml.load(f, Loader=yaml.SafeLoader)"))
        return draft(desc, skel, sec, f"return yaml.load(f, Loader={loader})")
    arg = c.any(("text", "body", "source"))
    if shape == "text_return":
        skel = ["import yaml", "", f"def {fn}({arg}):", "    @@"]
        return draft(desc, skel, f"return yaml.safe_load({arg})",
                     f"return yaml.load({arg}, Loader={loader})")
    skel = ["import yaml", "", f"def {fn}({arg}):", "    @@", "    return data"]
    return draft(desc, skel, f"data = yaml.safe_load({arg})",
                 f"data = yaml.load({arg}, Loader={loader})")


@code_family("torch-load", CWE)
def _torch_load(c: Ctx) -> Draft:
    fn = c.pick(("load_checkpoint", "restore_weights", "resume_from"),
                ("warm_start", "load_pretrained_state", "import_weights"))
    model = c.pick(("model", "net"), ("module", "network"))
    path = c.pick(("ckpt_path", "path", "checkpoint"), ("weights_file", "state_path", "source"))
    desc = c.pick(
        ("A training script step that loads a checkpoint downloaded from the internet.",
         "A function that restores model weights from a file shared by another team.",
         "A resume helper that reloads weights from a user-supplied checkpoint."),
        ("An inference server that warm-starts a model from a user-provided state file.",
         "A fine-tuning tool that loads third-party weights before training.",
         "A model zoo client that imports weights uploaded by the community."),
    )
    loc = c.any(("", ', map_location="cpu"'))
    skel = ["import torch", "", f"def {fn}({model}, {path}):", "    @@",
            f"    {model}.load_state_dict(state)", f"    return {model}"]
    return draft(desc, skel, f"state = torch.load({path}{loc}, weights_only=True)",
                 f"state = torch.load({path}{loc})")


@code_family("marshal-load", CWE, heldout=True)
def _marshal_load(c: Ctx) -> Draft:
    fn = c.any(("read_cache", "load_cached", "restore_index", "decode_job"))
    arg = c.any(("blob", "raw", "message"))
    desc = c.any(("A cache reader that restores a dictionary written by another service.",
                  "A worker that decodes a job description received from a queue.",
                  "A search index loader that restores an index sent by a peer node."))
    if c.coin():
        skel = ["import json", "import marshal", "", f"def {fn}({arg}):", "    @@"]
        return draft(desc, skel, f"return json.loads({arg})", f"return marshal.loads({arg})")
    skel = ["import json", "import marshal", "", f"def {fn}(path):", '    with open(path, "rb") as f:',
            "        @@"]
    return draft(desc, skel, "return json.load(f)", "return marshal.load(f)")
