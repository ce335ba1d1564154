"""Agreement speed and memory beside the krippendorff package, on the same data, same run.

(a) nominal alpha on 1,000,000 units × 3 coders: our vectorized coincidence matrix against
    ``krippendorff.alpha``, each in its own process so each peak memory is its own.
    Targets: at most 0.15× the package's time and under 1 GB.
(b) the full multi-label report (overall, MASI, 69 per-code alphas with B = 1,000
    bootstrap intervals, kappas) for 100,000 units × 3 coders read from a database (a
    throwaway SQLite file written here with bulk inserts), against the package computing
    only the 69 per-code alphas on matrices prepared in memory. Targets: under 20 s, at
    most 0.5× the package's time, under 1 GB.

Data are prepared in a child process of their own, so every measured child starts from
a small parent (ru_maxrss counts the memory a child inherits at fork).

Run: .venv/bin/python bench/agreement_bench.py [--units-a N] [--units-b N] [--replicates B]
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_CODES = 69
CODERS = 3


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ children (own process)


def child_alpha(which: str, path: str) -> None:
    data = np.load(path)
    # Each side's modules are imported before the clock starts: the figure is the
    # computation, not Python loading pandas or scipy.
    if which == "package":
        import krippendorff

        def compute() -> float:
            return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    else:
        sys.path.insert(0, str(ROOT))
        from analysis.agreement import alpha

        def compute() -> float:
            return alpha(data, "nominal")

    started, cpu = time.perf_counter(), time.process_time()
    value = compute()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "alpha": float(value), "peak_mb": peak_mb()}))


def child_per_code(path: str) -> None:
    import krippendorff

    matrices = np.load(path)["binary"]
    started, cpu = time.perf_counter(), time.process_time()
    values = [
        float(krippendorff.alpha(reliability_data=m, level_of_measurement="nominal"))
        for m in matrices
    ]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "alphas": values, "peak_mb": peak_mb()}))


def child_report(db_path: str, replicates: int) -> None:
    os.environ["SQLITE_PATH"] = db_path
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from analysis.agreement import agreement_report
    from analysis.codings import project_codings
    from coding.models import Project

    project = Project.objects.get(slug="bench")
    started, cpu = time.perf_counter(), time.process_time()
    codings = project_codings(project)
    read, read_cpu = time.perf_counter() - started, time.process_time() - cpu
    report = agreement_report(codings, replicates=replicates)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    alphas = {code: f["alpha"] for code, f in report["per_code"].items()}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "read_seconds": read,
                "read_cpu": read_cpu,
                "alphas": alphas,
                "masi_alpha": report["masi_alpha"],
                "intervals": sum(1 for f in report["per_code"].values() if f["alpha_ci95"]),
                "peak_mb": peak_mb(),
            }
        )
    )


def child_prepare(which: str, tmp: str, units: int) -> None:
    """Data for (a) or (b), made in a child so the parent stays small: a child started by
    fork and exec inherits its parent's peak memory in ru_maxrss."""
    if which == "a":
        np.save(f"{tmp}/single.npy", single_matrix(units))
        print(json.dumps({}))
        return
    presence = label_sets(units)
    np.savez(f"{tmp}/binary.npz", binary=presence.transpose(2, 0, 1).astype(np.float64))
    started = time.perf_counter()
    write_database(f"{tmp}/bench.sqlite3", presence)
    print(
        json.dumps(
            {
                "codings": int(presence.any(axis=2).size),
                "applications": int(presence.sum()),
                "seconds": time.perf_counter() - started,
            }
        )
    )


def run_child(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ data


def single_matrix(units: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, size=units)
    noise = rng.integers(1, 6, size=(CODERS, units))
    data = np.where(rng.random((CODERS, units)) < 0.8, truth, noise).astype(np.float64)
    data[rng.random((CODERS, units)) < 0.05] = np.nan
    return data


def label_sets(units: int, seed: int = 2) -> np.ndarray:
    """(coders, units, codes) presence: 1–3 true codes per unit, coders drop and add some."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_CODES + 1) ** 0.8
    weights /= weights.sum()
    truth = np.zeros((units, N_CODES), dtype=bool)
    for _ in range(3):
        chosen = rng.choice(N_CODES, size=units, p=weights)
        keep = rng.random(units) < [1.0, 0.45, 0.15][_]
        truth[np.flatnonzero(keep), chosen[keep]] = True
    presence = np.repeat(truth[None], CODERS, axis=0)
    presence &= rng.random(presence.shape) >= 0.12
    extra = rng.random((CODERS, units)) < 0.15
    extra_code = rng.choice(N_CODES, size=(CODERS, units), p=weights)
    c_idx, u_idx = np.nonzero(extra)
    presence[c_idx, u_idx, extra_code[extra]] = True
    return presence


def write_database(db_path: str, presence: np.ndarray) -> None:
    """A project with units × coders submitted codings, written with bulk inserts."""
    os.environ["SQLITE_PATH"] = db_path
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from coding.models import (
        Code,
        CodeApplication,
        Codebook,
        CodebookVersion,
        Coding,
        ForumSource,
        Project,
        Round,
        Thread,
        Unit,
    )

    call_command("migrate", verbosity=0)
    coders, units, codes = presence.shape
    users = [
        get_user_model().objects.create_user(f"coder{c}", password=None) for c in range(coders)
    ]
    version = CodebookVersion.objects.create(
        codebook=Codebook.objects.create(name="Bench"), number=1
    )
    groups = [Code.objects.create(version=version, key=f"g{g}", name=f"G{g}") for g in range(6)]
    code_rows = Code.objects.bulk_create(
        [
            Code(version=version, key=f"c{k:02d}", name=f"Code {k}", parent=groups[k % 6])
            for k in range(codes)
        ]
    )
    project = Project.objects.create(
        name="Bench", slug="bench", codebook_version=version, created_by=users[0]
    )
    round_ = Round.objects.create(project=project, name="main")
    source = ForumSource.objects.create(name="Bench", base_url="https://bench.test")
    when = datetime(2022, 1, 1, tzinfo=UTC)
    batch = 20_000
    threads = Thread.objects.bulk_create(
        [
            Thread(source=source, external_id=n, title=f"t{n}", created_at=when)
            for n in range(units)
        ],
        batch_size=batch,
    )
    unit_rows = Unit.objects.bulk_create(
        [Unit(project=project, round=round_, thread=t, position=n) for n, t in enumerate(threads)],
        batch_size=batch,
    )
    coding_rows = Coding.objects.bulk_create(
        [
            Coding(
                unit=unit,
                coder=users[c],
                codebook_version=version,
                status=Coding.Status.SUBMITTED,
                submitted_at=when,
            )
            for unit in unit_rows
            for c in range(coders)
        ],
        batch_size=batch,
    )
    flat = presence.transpose(1, 0, 2).reshape(units * coders, codes)
    coding_idx, code_idx = np.nonzero(flat)
    CodeApplication.objects.bulk_create(
        [
            CodeApplication(coding_id=coding_rows[j].pk, code_id=code_rows[k].pk)
            for j, k in zip(coding_idx.tolist(), code_idx.tolist(), strict=True)
        ],
        batch_size=batch,
    )


# ------------------------------------------------------------------ main


def line(name: str, ours: dict, theirs: dict, target: float) -> bool:
    """Wall-clock ratio (the target) with the CPU-time ratio beside it: on a shared machine
    the wall clock includes waiting for a core."""
    ratio = ours["seconds"] / theirs["seconds"]
    ok = ratio <= target
    print(
        f"{name}: ours {ours['seconds']:.2f} s, krippendorff {theirs['seconds']:.2f} s, "
        f"ratio {ratio:.3f} (target ≤ {target}) {'ok' if ok else 'MISSED'}; CPU time "
        f"{ours['cpu']:.2f} s vs {theirs['cpu']:.2f} s, ratio {ours['cpu'] / theirs['cpu']:.3f}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units-a", type=int, default=1_000_000)
    parser.add_argument("--units-b", type=int, default=100_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="agreement_bench_") as tmp:
        if not args.skip_a:
            path = f"{tmp}/single.npy"
            run_child("prepare", "a", tmp, str(args.units_a))
            theirs = run_child("package-alpha", path)
            ours = run_child("our-alpha", path)
            print(f"(a) nominal alpha, {args.units_a:,} units × {CODERS} coders")
            print(f"    alpha: ours {ours['alpha']:.12f}, krippendorff {theirs['alpha']:.12f}")
            ok &= abs(ours["alpha"] - theirs["alpha"]) < 1e-9
            ok &= line("    time", ours, theirs, 0.15)
            memory_ok = ours["peak_mb"] < 1024
            print(
                f"    peak memory: ours {ours['peak_mb']:.0f} MB, krippendorff "
                f"{theirs['peak_mb']:.0f} MB (target < 1024 MB) "
                f"{'ok' if memory_ok else 'MISSED'}"
            )
            ok &= memory_ok
        if not args.skip_b:
            written = run_child("prepare", "b", tmp, str(args.units_b))
            db_path = f"{tmp}/bench.sqlite3"
            print(
                f"(b) database written: {args.units_b:,} units, {written['codings']:,} codings, "
                f"{written['applications']:,} code applications ({written['seconds']:.0f} s)"
            )
            theirs = run_child("package-per-code", f"{tmp}/binary.npz")
            ours = run_child("our-report", db_path, str(args.replicates))
            ours_alphas = [ours["alphas"][f"c{k:02d}"] for k in range(N_CODES)]
            gap = max(abs(a - b) for a, b in zip(ours_alphas, theirs["alphas"], strict=True))
            print(
                f"    per-code alphas: largest difference from krippendorff {gap:.1e}; "
                f"{ours['intervals']} intervals with B = {args.replicates}; "
                f"MASI alpha {ours['masi_alpha']:.4f}"
            )
            ok &= gap < 1e-9
            memory_ok = ours["peak_mb"] < 1024
            print(
                f"    full report {ours['seconds']:.2f} s (database read "
                f"{ours['read_seconds']:.2f} s, CPU {ours['read_cpu']:.2f} s), peak "
                f"{ours['peak_mb']:.0f} MB (< 1024 MB {'ok' if memory_ok else 'MISSED'}); "
                f"target < 20 s {'ok' if ours['seconds'] < 20 else 'MISSED'}"
            )
            ok &= ours["seconds"] < 20 and memory_ok
            ok &= line("    full report vs the package's 69 per-code alphas", ours, theirs, 0.5)
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("all targets met" if ok else "some targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "package-alpha":
            child_alpha("package", rest[0])
        elif kind == "our-alpha":
            child_alpha("ours", rest[0])
        elif kind == "package-per-code":
            child_per_code(rest[0])
        elif kind == "our-report":
            child_report(rest[0], int(rest[1]))
        elif kind == "prepare":
            child_prepare(rest[0], rest[1], int(rest[2]))
        sys.exit(0)
    sys.exit(main())
