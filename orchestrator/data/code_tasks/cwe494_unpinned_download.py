"""CWE-494: download of code without integrity check (unpinned Hugging Face revisions): task families."""

from __future__ import annotations

from orchestrator.data.code_tasks.family import Ctx, Draft, code_family, draft

CWE = "CWE-494"


@code_family("hf-from-pretrained", CWE)
def _hf_from_pretrained(c: Ctx) -> Draft:
    cls, kind = c.pick((("AutoModelForCausalLM", "language model"), ("AutoTokenizer", "tokenizer")),
                       (("AutoModelForSequenceClassification", "classifier"),
                        ("AutoModel", "encoder")))
    fn = c.pick(("load_model", "get_pretrained", "load_tokenizer"),
                ("fetch_backbone", "init_from_hub", "materialise"))
    name = c.pick(("name", "model_id"), ("repo", "checkpoint"))
    desc = c.pick(
        (f"A function that loads a pretrained {kind} from the Hugging Face Hub for training.",
         f"An inference server start-up step that downloads a {kind} from the Hub.",
         f"A notebook helper that pulls a {kind} from a Hub repository."),
        (f"An evaluation script that fetches a {kind} from the Hugging Face Hub.",
         f"A fine-tuning job that initialises a {kind} from a Hub repository.",
         f"A batch scorer that instantiates a {kind} stored on the Hub."),
    )
    skel = [f"from transformers import {cls}", "", f'REVISION = "{c.hex(c.any((7, 8, 10)))}"', "",
            f"def {fn}({name}):", "    @@"]
    return draft(desc, skel, f"return {cls}.from_pretrained({name}, revision=REVISION)",
                 f"return {cls}.from_pretrained({name})")


@code_family("hf-hub-download", CWE)
def _hf_hub_download(c: Ctx) -> Draft:
    fn = c.pick(("fetch_config", "download_weights"), ("grab_file", "pull_artifact"))
    filename = c.pick(("config.json", "model.safetensors"), ("tokenizer.json", "vocab.txt"))
    repo = c.pick(("repo_id", "repo"), ("model_repo", "source"))
    desc = c.pick(
        (f"A function that downloads {filename} from a Hugging Face model repository.",
         f"A setup step that fetches {filename} from the Hub into the local cache."),
        (f"A packaging tool that pulls {filename} from a Hub repo chosen by the user.",
         f"A CI job that retrieves {filename} from the Hugging Face Hub."),
    )
    skel = ["from huggingface_hub import hf_hub_download", "",
            f'REVISION = "{c.hex(c.any((7, 8, 10)))}"', "", f"def {fn}({repo}):", "    @@"]
    call = f'hf_hub_download(repo_id={repo}, filename="{filename}"'
    return draft(desc, skel, f"return {call}, revision=REVISION)", f"return {call})")


@code_family("hf-load-dataset", CWE)
def _hf_load_dataset(c: Ctx) -> Draft:
    fn = c.pick(("load_corpus", "get_dataset"), ("fetch_benchmark", "read_eval_set"))
    split = c.pick(("train", "validation"), ("test", "train[:10%]"))
    desc = c.pick(
        (f"A data loader that reads the {split} split of a Hub dataset for training.",
         f"A function that downloads the {split} split of a dataset from Hugging Face."),
        (f"A benchmark runner that fetches the {split} split of a Hub dataset.",
         f"An evaluation helper that loads the {split} split of a dataset from the Hub."),
    )
    skel = ["from datasets import load_dataset", "", f'REVISION = "{c.hex(c.any((7, 8, 10)))}"',
            "", f"def {fn}(name):", "    @@"]
    return draft(desc, skel, f'return load_dataset(name, split="{split}", revision=REVISION)',
                 f'return load_dataset(name, split="{split}")')
