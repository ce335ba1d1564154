"""A project's codings as the long table ``unit, coder, code, unsure``.

This is the table the long CSV export holds (its ``unit``, ``coder``, ``code`` and
``unsure`` columns) and that ``agreement --input`` reads, so the figures from a project
and from its export are the same:

- only submitted codings count;
- ``unit`` is the unit's id, ``coder`` the coder's username, ``code`` the code's key;
- a coding marked "not relevant" gets the code ``__not_relevant__`` (a code of its own);
- a coding with no code at all gets one row with an empty code ("coded, no code applies");
- ``unsure`` is 1 on every row of a coding its coder marked unsure.

With ``depth``, codes are rolled up the codebook tree: each code is replaced by its
ancestor at that depth (0 = the top groups, 1 = the level just below them, the
"categories"), and a code above that depth stands for itself. A unit then has a category
for a coder when any of the coder's codes lies in it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db import connections

from coding.models import Code, CodeApplication, CodebookVersion, Coding, Project, Round

from .agreement import NOT_RELEVANT, NOT_RELEVANT_LABEL

CATEGORY_DEPTH = 1


def _codings(project: Project, round: Round | None, version: CodebookVersion | None):
    codings = Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
    if round is not None:
        codings = codings.filter(unit__round=round)
    if version is not None:
        codings = codings.filter(codebook_version=version)
    return codings


def _fetch(queryset) -> list[tuple]:
    """The rows of a values_list query straight from the cursor, without per-row conversion.

    For the hundreds of thousands of rows of a large project; booleans may come back as
    0/1 and are cast by the caller.
    """
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def code_keys_at_depth(version_ids: set[int], depth: int | None) -> dict[int, str]:
    """code id → the key it counts as: its own, or its ancestor's at ``depth``."""
    codes = {
        pk: (key, parent)
        for pk, key, parent in Code.objects.filter(version_id__in=version_ids).values_list(
            "id", "key", "parent_id"
        )
    }
    if depth is None:
        return {pk: key for pk, (key, _) in codes.items()}
    result = {}
    for pk in codes:
        path = [pk]
        while codes[path[-1]][1] is not None and codes[path[-1]][1] in codes:
            path.append(codes[path[-1]][1])
        path.reverse()  # root first
        result[pk] = codes[path[min(depth, len(path) - 1)]][0]
    return result


def long_table(
    project: Project,
    *,
    round: Round | None = None,
    version: CodebookVersion | None = None,
    depth: int | None = None,
) -> pd.DataFrame:
    """The long table of the project's submitted codings (see the module docstring)."""
    codings = _codings(project, round, version)
    rows = _fetch(codings.values_list("id", "unit_id", "coder__username", "not_relevant", "unsure"))
    if not rows:
        return pd.DataFrame({"unit": [], "coder": [], "code": [], "unsure": []})
    frame = pd.DataFrame(rows, columns=["coding", "unit", "coder", "not_relevant", "unsure"])
    applications = pd.DataFrame(
        _fetch(
            CodeApplication.objects.filter(coding__in=codings.values("id")).values_list(
                "coding_id", "code_id", "code__version_id"
            )
        ),
        columns=["coding", "code_id", "version"],
    )
    keys = code_keys_at_depth(set(applications["version"].unique().tolist()), depth)
    applications["code"] = applications["code_id"].map(keys)
    frame["not_relevant"] = frame["not_relevant"].astype(bool)
    applied = applications[["coding", "code"]].merge(frame, on="coding")
    not_relevant = frame[frame["not_relevant"]].assign(code=NOT_RELEVANT)
    coded = set(applied["coding"]) | set(not_relevant["coding"])
    empty = frame[~frame["coding"].isin(coded)].assign(code="")
    table = pd.concat([applied, not_relevant, empty], ignore_index=True)
    table = table.drop_duplicates(["coding", "code"])
    table["unit"] = table["unit"].astype(str)
    table["unsure"] = table["unsure"].astype(bool)
    order = np.lexsort((table["code"].to_numpy(), table["coding"].to_numpy()))
    return table.iloc[order][["unit", "coder", "code", "unsure"]].reset_index(drop=True)


def code_labels(project: Project, version: CodebookVersion | None = None) -> dict[str, str]:
    """code key → name for the version (the project's by default), with "Not relevant"."""
    version = version or project.codebook_version
    labels = {NOT_RELEVANT: NOT_RELEVANT_LABEL, "": "(no code)"}
    if version is not None:
        labels.update(dict(Code.objects.filter(version=version).values_list("key", "name")))
    return labels
