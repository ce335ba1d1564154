"""A project's codings as the long table ``unit, coder, code, unsure``.

``project_codings`` reads the same codings straight into the arrays the agreement
figures are computed from (``analysis.agreement.Codings``), for large projects.

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

from collections.abc import Iterable

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import connections

from coding.models import Code, CodeApplication, CodebookVersion, Coding, Project, Round

from .agreement import NOT_RELEVANT, NOT_RELEVANT_LABEL, Codings

CATEGORY_DEPTH = 1
# Read a range of code applications whole when the codings' ids fill at least 1/4 of it.
DENSE_IDS = 4


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


def _integer_columns(queryset, expressions: list[str]) -> list[np.ndarray]:
    """Integer columns computed from a values_list query, one array per expression.

    ``expressions`` are SQL over the query's columns, named c0, c1, ... in order. On
    SQLite and PostgreSQL the database joins each into one comma-separated string
    (``group_concat`` / ``string_agg``) that numpy parses, so no Python object is made per
    row. The aggregates run in one pass over the same rows, so the columns stay aligned
    (PostgreSQL is also told to order each by c0). Elsewhere rows are fetched as tuples.
    """
    sql, params = queryset.query.sql_with_params()
    connection = connections[queryset.db]
    columns = [f"c{i}" for i in range(len(queryset.query.values_select))]
    if connection.vendor == "sqlite":
        aggregates = [f"group_concat({e}, ',')" for e in expressions]
    elif connection.vendor == "postgresql":
        aggregates = [f"string_agg(CAST({e} AS text), ',' ORDER BY c0)" for e in expressions]
    else:
        aggregates = expressions
    # Only the ORM's own parameterized SQL and fixed expressions are spliced in.
    wrapped = f"WITH t ({', '.join(columns)}) AS ({sql}) SELECT {', '.join(aggregates)} FROM t"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(wrapped, params)
        if connection.vendor not in ("sqlite", "postgresql"):
            rows = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, len(expressions))
            return list(rows.T)
        texts = cursor.fetchone()
    if not texts[0]:
        return [np.zeros(0, dtype=np.int64) for _ in expressions]
    return [np.fromstring(text, dtype=np.int64, sep=",") for text in texts]


def _dense_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each value among the distinct values, the distinct values in order)."""
    if len(values) and values.max() - values.min() < 4 * len(values):
        low = values.min()
        present = np.zeros(values.max() - low + 1, dtype=bool)
        present[values - low] = True
        rank = np.cumsum(present) - 1
        return rank[values - low], np.flatnonzero(present) + low
    index, distinct = pd.factorize(values, sort=True)
    return index, np.asarray(distinct)


def _text_order(numbers: np.ndarray) -> np.ndarray:
    """The order of non-negative integers compared as decimal text ("10" before "9")."""
    if len(numbers) == 0 or numbers.max() >= 10**16:
        return np.argsort(numbers.astype(str), kind="stable")
    digits = np.searchsorted(10 ** np.arange(1, 17, dtype=np.int64), numbers, side="right") + 1
    longest = int(digits.max())
    # Left-aligned digits compare as text; a prefix ("1" of "10") comes first.
    aligned = numbers * 10 ** (longest - digits).astype(np.int64)
    return np.argsort(aligned * 20 + digits, kind="stable")


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """argsort of non-negative integer keys; below 2**32 as two radix passes over 16 bits."""
    if len(keys) == 0 or keys.max() >= 2**32:
        return np.argsort(keys, kind="stable")
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")]


def project_codings(
    project: Project,
    *,
    round: Round | None = None,
    version: CodebookVersion | None = None,
    depth: int | None = None,
) -> Codings:
    """The project's submitted codings as arrays: the same as ``to_codings`` of
    ``long_table`` with the same arguments, read with two queries and no per-row objects.

    1. Codings (id, unit, coder, not relevant, unsure) of the filtered queryset.
    2. Code applications: when the codings' ids fill most of their range, the range is
       read whole from the (coding, code) index and filtered here; otherwise by the
       codings subquery.
    3. Units are numbered in the order of their labels (the unit id as text), coders in
       the order of their usernames and codes of their keys, as the long table's are.
    """
    codings = _codings(project, round, version).order_by()
    ids, unit_ids, packed = _integer_columns(
        codings.values_list("id", "unit_id", "coder_id", "not_relevant", "unsure"),
        ["c0", "c1", "c2 * 4 + CAST(c3 AS integer) * 2 + CAST(c4 AS integer)"],
    )
    low, high = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
    applications = CodeApplication.objects.order_by()
    if high - low < DENSE_IDS * len(ids):
        applications = applications.filter(coding_id__gte=low, coding_id__lte=high)
        row_of_id = np.full(high - low + 1, -1, dtype=np.int64)
        row_of_id[ids - low] = np.arange(len(ids))
    else:
        applications = applications.filter(coding__in=codings.values("id"))
        row_of_id = None
    applied_id, applied_code_id = _integer_columns(
        applications.values_list("coding_id", "code_id"), ["c0", "c1"]
    )
    if row_of_id is not None:
        row_of_application = row_of_id[applied_id - low]
    else:
        by_id = np.argsort(ids)
        at = np.minimum(np.searchsorted(ids, applied_id, sorter=by_id), len(ids) - 1)
        row_of_application = np.where(ids[by_id[at]] == applied_id, by_id[at], -1)
    kept = row_of_application >= 0
    applied_code_id, row_of_application = applied_code_id[kept], row_of_application[kept]

    # Units, coders and codes in the long table's order.
    unit_of_row, distinct_units = _dense_ranks(unit_ids)
    by_label = _text_order(distinct_units)
    unit_rank = np.empty(len(distinct_units), dtype=np.int64)
    unit_rank[by_label] = np.arange(len(distinct_units))
    coder_of_row, coder_ids = pd.factorize(packed >> 2, sort=True)
    names = dict(
        get_user_model().objects.filter(pk__in=coder_ids.tolist()).values_list("id", "username")
    )
    coder_names = np.array([names[int(pk)] for pk in coder_ids], dtype=object)
    by_name = np.argsort(coder_names, kind="stable")
    coder_rank = np.empty(len(coder_ids), dtype=np.int64)
    coder_rank[by_name] = np.arange(len(coder_ids))
    code_of_application, code_ids = pd.factorize(applied_code_id, sort=True)
    versions = Code.objects.filter(pk__in=code_ids.tolist()).values("version_id")
    keys_by_id = code_keys_at_depth(versions, depth)
    code_keys = [keys_by_id[int(pk)] for pk in code_ids]
    not_relevant = (packed & 2).astype(bool)
    codes = sorted(set(code_keys) | ({NOT_RELEVANT} if not_relevant.any() else set()))
    code_index = {key: k for k, key in enumerate(codes)}

    # Codings sorted by unit, then coder; each row's position in that order.
    n_coders = len(coder_ids)
    unit = unit_rank[unit_of_row]
    coder = coder_rank[coder_of_row]
    order = _stable_order(unit * n_coders + coder)
    position = np.empty(len(ids), dtype=np.int64)
    position[order] = np.arange(len(ids))
    coding_of_application = position[row_of_application]

    # Distinct (coding, code) pairs sorted by coding, then code; roll-ups may merge codes.
    width = max(len(codes), 1)
    key_of_code = np.array([code_index[key] for key in code_keys], dtype=np.int64)
    pairs = [coding_of_application * width + key_of_code[code_of_application]]
    if not_relevant.any():
        pairs.append(position[not_relevant] * width + code_index[NOT_RELEVANT])
    pairs = np.concatenate(pairs)
    pairs = pairs[_stable_order(pairs)]
    pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])] if len(pairs) else pairs
    applied_coding, applied_code = pairs // width, pairs % width
    has_empty = np.bincount(applied_coding, minlength=len(ids)) == 0
    return Codings(
        units=distinct_units[by_label].astype(str),
        coders=coder_names[by_name],
        codes=np.array(codes, dtype=object),
        unit=unit[order],
        coder=coder[order],
        unsure=(packed[order] & 1).astype(bool),
        applied_coding=applied_coding,
        applied_code=applied_code,
        rows_per_coding=np.bincount(applied_coding, minlength=len(ids)) + has_empty,
        has_empty=has_empty,
    )


def code_keys_at_depth(version_ids: Iterable[int], depth: int | None) -> dict[int, str]:
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
