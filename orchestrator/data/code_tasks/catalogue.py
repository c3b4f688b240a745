"""Every built-in task family, gathered from the CWE modules in a fixed order.

`MODULES` is the order `generate_tasks` cycles through the CWEs (task i of a split is drawn from
CWE i mod len(CWES)); within one CWE, families take turns in the order their module registers
them. Reordering `MODULES`, or the families inside a module, changes every generated task list,
and with it every trial's data and stage keys. A new CWE goes at the end.
"""

from __future__ import annotations

from types import ModuleType

from orchestrator.data.code_tasks import (
    cwe22_path_traversal,
    cwe78_command_injection,
    cwe79_xss,
    cwe89_sql_injection,
    cwe94_code_injection,
    cwe295_certificate_validation,
    cwe326_key_size,
    cwe327_weak_crypto,
    cwe377_temp_files,
    cwe400_no_timeout,
    cwe494_unpinned_download,
    cwe502_deserialisation,
    cwe605_bind_all_interfaces,
    cwe611_xxe,
    cwe732_permissions,
)
from orchestrator.data.code_tasks.family import CODE_FAMILIES

MODULES: tuple[ModuleType, ...] = (
    cwe78_command_injection,
    cwe89_sql_injection,
    cwe79_xss,
    cwe22_path_traversal,
    cwe502_deserialisation,
    cwe327_weak_crypto,
    cwe295_certificate_validation,
    cwe377_temp_files,
    cwe611_xxe,
    cwe94_code_injection,
    cwe732_permissions,
    cwe605_bind_all_interfaces,
    cwe400_no_timeout,
    cwe326_key_size,
    cwe494_unpinned_download,
)

CWES: tuple[str, ...] = tuple(module.CWE for module in MODULES)
HELDOUT_FAMILIES: frozenset[str] = frozenset(name for name, f in CODE_FAMILIES.items() if f.heldout)


def families() -> dict[str, str]:
    """Family name -> CWE, for every family (held-out ones included), in `CWES` order."""
    rank = {cwe: i for i, cwe in enumerate(CWES)}
    ordered = sorted(CODE_FAMILIES.items(), key=lambda item: rank.get(item[1].cwe, len(rank)))
    return {name: f.cwe for name, f in ordered}
