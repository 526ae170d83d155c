#!/usr/bin/env python3
"""Score `leakwatch scan` against the labelled corpus: precision and recall per finding type.

    python3 tests/corpus/eval.py                       # build/leakwatch, policies/, default limits
    python3 tests/corpus/eval.py --leakwatch PATH --policy DIR --min-precision 0.97 --min-recall 0.95
    python3 tests/corpus/eval.py --results scan.jsonl  # score saved `scan --format json` output
    python3 tests/corpus/eval.py --self-test           # check this script's own scoring

Scoring, per file and type: TP = min(expected, found), FP = max(0, found - expected),
FN = max(0, expected - found), summed over files. `found` is the sum of the `count` of the file's
findings of that type (several rules may report one type). Types are the ones labels.json mentions;
a type no label mentions is "unlabelled": the corpus holds no values of such kinds on purpose, so
every finding of it is a false positive, and more than --max-unlabelled-fp of them (per type) fails.

Exit status: 0 every labelled type meets both thresholds and no unlabelled type is over its limit;
1 otherwise; 2 when the scan could not be run or its output is malformed, incomplete or ambiguous
(nothing is scored from partial output).
python3 stdlib only.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class EvalError(Exception):
    """The evaluation cannot be trusted: exit 2 with the message."""


# -------------------------------------------------------------------------------------------------
# Inputs


def load_labels(path):
    try:
        with open(path, encoding="utf-8") as f:
            labels = json.load(f)
    except (OSError, ValueError) as e:
        raise EvalError("cannot read labels %s: %s" % (path, e))
    if not isinstance(labels, dict) or not labels:
        raise EvalError("%s: expected a non-empty object {file: {type: count}}" % path)
    for rel, lab in labels.items():
        if not isinstance(lab, dict):
            raise EvalError("%s: %s: labels must be an object" % (path, rel))
        for t, n in lab.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise EvalError("%s: %s: %s: count must be an integer >= 0" % (path, rel, t))
    return labels


def check_corpus_files(corpus, labels):
    missing = [rel for rel in labels if not os.path.isfile(os.path.join(corpus, rel))]
    bodies = os.path.join(corpus, "bodies")
    extra = []
    if os.path.isdir(bodies):
        extra = sorted("bodies/" + n for n in os.listdir(bodies) if "bodies/" + n not in labels)
    if missing or extra:
        raise EvalError("labels.json and the corpus files disagree (regenerate with gen.py):%s%s" % (
            "".join("\n  labelled but missing: " + m for m in missing[:10]),
            "".join("\n  present but unlabelled: " + x for x in extra[:10])))


class Resolver:
    """Maps the `file` a result names back to its corpus key (absolute, cwd- or corpus-relative)."""

    def __init__(self, corpus, rels):
        self.by_real = {os.path.realpath(os.path.join(corpus, r)): r for r in rels}
        self.rels = rels

    def __call__(self, name):
        real = os.path.realpath(name)
        if real in self.by_real:
            return self.by_real[real]
        norm = os.path.normpath(name).replace(os.sep, "/")
        hits = [r for r in self.rels if norm == r or norm.endswith("/" + r)]
        return hits[0] if len(hits) == 1 else None


def parse_results(lines, resolver, expected, alias, origin):
    """JSON lines of `scan --format json` -> {rel: {type: count}}, {rel: {type: [samples]}},
    {rel: {"api": ..., "incomplete": ...}} (what the scanner says about how it read the file)."""
    found, samples, meta, errors = {}, {}, {}, []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = "%s:%d" % (origin, no)
        try:
            obj = json.loads(line)
        except ValueError as e:
            errors.append("%s: not JSON (%s): %.120s" % (where, e, line))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("file"), str):
            errors.append("%s: no \"file\" string: %.120s" % (where, line))
            continue
        rel = resolver(obj["file"])
        if rel is None or rel not in expected:
            errors.append("%s: result for a file outside the corpus: %s" % (where, obj["file"]))
            continue
        if rel in found:
            errors.append("%s: second result for %s" % (where, rel))
            continue
        if "error" in obj:
            errors.append("%s: the scanner failed on %s: %.200s" % (where, rel, obj["error"]))
            continue
        fl = obj.get("findings")
        if not isinstance(fl, list):
            errors.append("%s: %s: \"findings\" is not a list" % (where, rel))
            continue
        counts, samp = {}, {}
        for f in fl:
            t = f.get("type") if isinstance(f, dict) else None
            n = f.get("count") if isinstance(f, dict) else None
            if not isinstance(t, str) or not t:
                errors.append("%s: %s: finding without a \"type\": %.120s" % (where, rel, f))
                continue
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                errors.append("%s: %s: %s finding without a positive integer \"count\"" % (
                    where, rel, t))
                continue
            t = alias.get(t, t)
            counts[t] = counts.get(t, 0) + n
            if isinstance(f.get("sample"), str):
                samp.setdefault(t, []).append(f["sample"])
        found[rel], samples[rel] = counts, samp
        meta[rel] = {"api": obj.get("api") if isinstance(obj.get("api"), str) else None,
                     "incomplete": obj.get("incomplete") is True}
    missing = [r for r in expected if r not in found]
    if missing and not errors:
        errors.append("no result for %d file(s), e.g. %s" % (len(missing), ", ".join(missing[:5])))
    if errors:
        more = "\n  ... %d more" % (len(errors) - 20) if len(errors) > 20 else ""
        raise EvalError("unusable scan output:\n  " + "\n  ".join(errors[:20]) + more)
    return found, samples, meta


def run_scan(leakwatch, policy, corpus, rels, batch, timeout, save):
    """`leakwatch scan --format json` over the corpus in batches; returns the output lines."""
    if not (os.path.isfile(leakwatch) and os.access(leakwatch, os.X_OK)):
        raise EvalError("%s is not an executable (build it with `make`, or pass --leakwatch)" %
                        leakwatch)
    out = []
    for i in range(0, len(rels), batch):
        part = rels[i:i + batch]
        cmd = [leakwatch, "scan", "--format", "json"]
        if policy:
            cmd += ["--policy", policy]
        cmd += [os.path.join(corpus, r) for r in part]
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EvalError("scan of %s..%s timed out after %ss" % (part[0], part[-1], timeout))
        except OSError as e:
            raise EvalError("cannot run %s: %s" % (leakwatch, e))
        # 0 = nothing found, 1 = findings; anything else (usage, crash, signal) voids the batch
        if p.returncode not in (0, 1):
            tail = p.stderr.decode("utf-8", "replace").strip().splitlines()[-15:]
            raise EvalError("`%s scan` exited with %d on %s..%s:\n  %s" % (
                leakwatch, p.returncode, part[0], part[-1], "\n  ".join(tail) or "(no stderr)"))
        out += p.stdout.decode("utf-8", "replace").splitlines()
    if save:
        with open(save, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
    return out


# -------------------------------------------------------------------------------------------------
# Scoring


def score(labels, found, ignore):
    """Per-type totals and per-file differences."""
    labelled = sorted({t for lab in labels.values() for t in lab if t not in ignore})
    types = {}
    diffs = []  # (type, rel, expected, found)
    for rel in sorted(labels):
        exp, got = labels[rel], found.get(rel, {})
        for t in sorted(set(exp) | set(got)):
            if t in ignore:
                continue
            e, g = exp.get(t, 0), got.get(t, 0)
            s = types.setdefault(t, {"tp": 0, "fp": 0, "fn": 0, "labelled": t in labelled})
            s["tp"] += min(e, g)
            s["fp"] += max(0, g - e)
            s["fn"] += max(0, e - g)
            if e != g:
                diffs.append((t, rel, e, g))
    for t in labelled:
        types.setdefault(t, {"tp": 0, "fp": 0, "fn": 0, "labelled": True})
    return types, diffs


def ratio(a, b):
    return a / b if b else None


def verdicts(types, min_p, min_r, max_unl):
    """[(type, reason)] for every type that fails."""
    bad = []
    for t, s in sorted(types.items()):
        if s["labelled"]:
            p = ratio(s["tp"], s["tp"] + s["fp"])
            r = ratio(s["tp"], s["tp"] + s["fn"])
            if p is not None and p < min_p:
                bad.append((t, "precision %.3f < %.3f" % (p, min_p)))
            if r is not None and r < min_r:
                bad.append((t, "recall %.3f < %.3f" % (r, min_r)))
        elif s["fp"] > max_unl:
            bad.append((t, "%d findings of a type no label mentions (limit %d)" % (s["fp"], max_unl)))
    return bad


def fmt(x):
    return "%.3f" % x if x is not None else "-"


def report(types, diffs, samples, meta, bad, args, nfiles, manifest):
    w = max([len(t) for t in types] + [22])
    head = "%-*s %6s %6s %6s %6s %10s %8s" % (w, "type", "label", "TP", "FP", "FN", "precision",
                                            "recall")
    print(head)
    print("-" * len(head))
    failing = {t for t, _ in bad}
    tot = {"tp": 0, "fp": 0, "fn": 0}
    for t, s in sorted(types.items()):
        if not s["labelled"]:
            continue
        for k in tot:
            tot[k] += s[k]
        print("%-*s %6d %6d %6d %6d %10s %8s%s" % (
            w, t, s["tp"] + s["fn"], s["tp"], s["fp"], s["fn"],
            fmt(ratio(s["tp"], s["tp"] + s["fp"])), fmt(ratio(s["tp"], s["tp"] + s["fn"])),
            "  FAIL" if t in failing else ""))
    print("-" * len(head))
    print("%-*s %6d %6d %6d %6d %10s %8s" % (
        w, "all labelled types", tot["tp"] + tot["fn"], tot["tp"], tot["fp"], tot["fn"],
        fmt(ratio(tot["tp"], tot["tp"] + tot["fp"])), fmt(ratio(tot["tp"], tot["tp"] + tot["fn"]))))
    unl = sorted(t for t, s in types.items() if not s["labelled"])
    if unl:
        print("\nunlabelled types (the corpus holds none: every finding is a false positive; "
              "limit %d per type):" % args.max_unlabelled_fp)
        for t in unl:
            print("%-*s %6s %6s %6d %6s%s" % (w, t, "-", "-", types[t]["fp"], "-",
                                             "  FAIL" if t in failing else ""))
    for title, pick in (("false positives (found > labelled)", lambda e, g: g > e),
                        ("false negatives (found < labelled)", lambda e, g: g < e)):
        rows = [(t, rel, e, g) for t, rel, e, g in diffs if pick(e, g)]
        if not rows:
            continue
        print("\n%s: %d" % (title, len(rows)))
        for t, rel, e, g in rows:
            smp = samples.get(rel, {}).get(t, [])
            api = meta.get(rel, {}).get("api")
            print("  %-*s %-48s expected %d found %d%s%s" % (
                w, t, rel, e, g, "  (read as %s)" % api if api else "",
                ("  samples " + ", ".join(smp[:3])) if smp else ""))
            if manifest is not None and rel in manifest:
                m = manifest[rel]
                for p in m["positives"]:
                    if p["type"] == t:
                        print("      labelled x%d: %s" % (p["count"], p["value"][:100]))
                if g > e:
                    # a false positive is often part of another type's value or a hard negative
                    for p in m["positives"]:
                        if p["type"] != t:
                            print("      other labelled %s x%d: %s" % (p["type"], p["count"],
                                                                      p["value"][:100]))
                    for n in m["hard_negatives"]:
                        print("      hard negative x%d (%s): %s" % (n["count"], n["kind"],
                                                                  n["value"][:100]))
    partial = sorted(rel for rel, m in meta.items() if m.get("incomplete"))
    if partial:
        # not a failure by itself: whatever it cost shows up as false negatives above
        print("\nnote: the scanner read %d file(s) incompletely: %s" % (
            len(partial), ", ".join(partial[:10]) + (" ..." if len(partial) > 10 else "")))
    print()
    for t, why in bad:
        print("FAIL %s: %s" % (t, why))
    print("corpus: %s (%d files, %d labelled types, precision >= %.3f, recall >= %.3f)" % (
        "FAIL" if bad else "PASS", nfiles, sum(1 for s in types.values() if s["labelled"]),
        args.min_precision, args.min_recall))


# -------------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Precision/recall of `leakwatch scan` on the labelled corpus.",
        epilog="Exit status: 0 pass, 1 a threshold is not met, 2 the scan or its output failed.")
    ap.add_argument("--leakwatch", default=os.path.join(REPO, "build", "leakwatch"),
                    help="the binary (default: build/leakwatch of this checkout)")
    ap.add_argument("--policy", default=None,
                    help="policy directory passed to scan (default: policies/ of this checkout)")
    ap.add_argument("--no-policy", action="store_true", help="scan with the built-in rules only")
    ap.add_argument("--min-precision", type=float, default=0.97)
    ap.add_argument("--min-recall", type=float, default=0.95)
    ap.add_argument("--max-unlabelled-fp", type=int, default=0, metavar="N",
                    help="findings allowed per type that no label mentions (default 0)")
    ap.add_argument("--corpus", default=HERE, help="corpus directory (default: this script's)")
    ap.add_argument("--labels", default=None, help="labels file (default: CORPUS/labels.json)")
    ap.add_argument("--results", metavar="FILE",
                    help="score saved `scan --format json` output instead of running scan")
    ap.add_argument("--save-results", metavar="FILE", help="keep the raw scan output")
    ap.add_argument("--batch", type=int, default=40, help="files per scan invocation")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per scan invocation")
    ap.add_argument("--ignore-type", action="append", default=[], metavar="TYPE",
                    help="leave TYPE out of the scoring (labels and findings)")
    ap.add_argument("--alias", action="append", default=[], metavar="FOUND=LABEL",
                    help="score findings of type FOUND as LABEL (a rule pack naming a type "
                         "differently)")
    ap.add_argument("--explain", action="store_true",
                    help="under each false positive/negative, list the file's labelled values "
                         "and hard negatives (from manifest.json)")
    ap.add_argument("--json", metavar="FILE", help="also write the per-type figures as JSON")
    ap.add_argument("--self-test", action="store_true", help="check the scoring logic and exit")
    a = ap.parse_args(argv)
    if a.batch < 1:
        ap.error("--batch must be >= 1")
    for x in a.alias:
        if x.count("=") != 1 or not all(x.split("=")):
            ap.error("--alias wants FOUND=LABEL, got %r" % x)
    return a


def main(argv):
    a = parse_args(argv)
    if a.self_test:
        return self_test()
    corpus = os.path.abspath(a.corpus)
    try:
        labels = load_labels(a.labels or os.path.join(corpus, "labels.json"))
        check_corpus_files(corpus, labels)
        rels = sorted(labels)
        alias = dict(x.split("=") for x in a.alias)
        resolver = Resolver(corpus, rels)
        if a.results:
            try:
                with open(a.results, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError as e:
                raise EvalError("cannot read %s: %s" % (a.results, e))
            origin = a.results
        else:
            policy = None
            if not a.no_policy:
                policy = a.policy or os.path.join(REPO, "policies")
                if not os.path.isdir(policy):
                    if a.policy:
                        raise EvalError("policy directory %s does not exist" % policy)
                    policy = None
            lines = run_scan(a.leakwatch, policy, corpus, rels, a.batch, a.timeout,
                             a.save_results)
            origin = "scan output"
        found, samples, meta = parse_results(lines, resolver, set(rels), alias, origin)
    except EvalError as e:
        print("eval.py: %s" % e, file=sys.stderr)
        return 2
    manifest = None
    if a.explain:
        try:
            with open(os.path.join(corpus, "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            print("eval.py: --explain: cannot read manifest.json: %s" % e, file=sys.stderr)
    types, diffs = score(labels, found, set(a.ignore_type))
    bad = verdicts(types, a.min_precision, a.min_recall, a.max_unlabelled_fp)
    report(types, diffs, samples, meta, bad, a, len(rels), manifest)
    if a.json:
        out = {t: dict(s, precision=ratio(s["tp"], s["tp"] + s["fp"]),
                       recall=ratio(s["tp"], s["tp"] + s["fn"])) for t, s in types.items()}
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"pass": not bad, "types": out,
                       "failures": [{"type": t, "reason": r} for t, r in bad]}, f, indent=1)
            f.write("\n")
    return 1 if bad else 0


# -------------------------------------------------------------------------------------------------
# Self-test: a three-file corpus, canned results and a fake scanner


FAKE_SCANNER = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "usage":
    print("scan: unknown option", file=sys.stderr)
    sys.exit(2)
if args[:3] != ["scan", "--format", "json"]:
    sys.exit(2)
files = args[3:]
if files[:1] == ["--policy"]:
    files = files[2:]
answers = json.load(open(os.environ["FAKE_ANSWERS"]))
hit = False
for path in files:
    if mode == "drop" and path.endswith("c.json"):
        continue
    fl = answers.get(os.path.basename(path), [])
    hit = hit or bool(fl)
    print(json.dumps({"file": path, "findings": fl}))
sys.exit(1 if hit else 0)
'''


def self_test():
    try:
        n = _self_test()
    except AssertionError as e:
        print(e, file=sys.stderr)
        return 1
    print("self-test: %d checks passed" % n)
    return 0


def _self_test():
    checks = 0
    tmp = tempfile.mkdtemp(prefix="lw-eval-selftest-")
    try:
        corpus = os.path.join(tmp, "corpus")
        os.makedirs(os.path.join(corpus, "bodies"))
        for n in ("a.json", "b.txt", "c.json"):
            with open(os.path.join(corpus, "bodies", n), "w") as f:
                f.write("{}\n")
        labels = {"bodies/a.json": {"credit_card": 1, "email": 2}, "bodies/b.txt": {},
                  "bodies/c.json": {"jwt": 1}}
        with open(os.path.join(corpus, "labels.json"), "w") as f:
            json.dump(labels, f)

        def finding(t, n, sample="x***"):
            return {"type": t, "rule": t, "count": n, "severity": "high", "sample": sample}

        def results(path, per_file, names=None):
            with open(path, "w") as f:
                for base, fl in per_file.items():
                    name = (names or {}).get(base, os.path.join(corpus, "bodies", base))
                    f.write(json.dumps({"file": name, "findings": fl}) + "\n")
            return path

        def run(*argv):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(["--corpus", corpus] + list(argv))
            return rc, out.getvalue() + err.getvalue()

        def expect(cond, what, output=""):
            nonlocal checks
            if not cond:
                raise AssertionError("self-test: %s\n%s" % (what, output))
            checks += 1

        # 1. perfect results, file names relative to the corpus and to elsewhere
        perfect = {"a.json": [finding("email", 2), finding("credit_card", 1)], "b.txt": [],
                   "c.json": [finding("jwt", 1)]}
        rc, out = run("--results", results(os.path.join(tmp, "p.jsonl"), perfect, {
            "a.json": "bodies/a.json", "c.json": "/elsewhere/tests/corpus/bodies/c.json"}))
        expect(rc == 0 and "corpus: PASS" in out, "perfect results pass", out)
        expect("credit_card" in out and " 1.000" in out, "table lists the types", out)

        # 2. one FP, one FN, one over-count, one unlabelled type, two rules of one type
        mixed = {"a.json": [finding("email", 2), finding("email", 1, "j***@e***.com")],  # 2 rules
                 "b.txt": [finding("email", 1), finding("generic_secret", 2)],
                 "c.json": [finding("jwt", 1), finding("phone", 1)]}
        path = results(os.path.join(tmp, "m.jsonl"), mixed)
        a = parse_args(["--corpus", corpus])
        found, samples, _ = parse_results(open(path).read().splitlines(),
                                          Resolver(corpus, sorted(labels)), set(labels), {}, "m")
        types, diffs = score(labels, found, set())
        expect(types["email"] == {"tp": 2, "fp": 2, "fn": 0, "labelled": True}, "email counts",
               types)
        expect(types["credit_card"] == {"tp": 0, "fp": 0, "fn": 1, "labelled": True},
               "missed card is a FN", types)
        expect(types["jwt"]["tp"] == 1 and types["jwt"]["fp"] == 0, "jwt TP", types)
        expect(types["generic_secret"] == {"tp": 0, "fp": 2, "fn": 0, "labelled": False},
               "unlabelled type is all FP", types)
        expect(types["phone"]["labelled"] is False and types["phone"]["fp"] == 1,
               "phone is unlabelled in this corpus", types)
        expect(("email", "bodies/a.json", 2, 3) in diffs and ("email", "bodies/b.txt", 0, 1) in diffs
               and ("credit_card", "bodies/a.json", 1, 0) in diffs, "per-file diffs", diffs)
        expect(samples["bodies/a.json"]["email"] == ["x***", "j***@e***.com"], "samples kept",
               samples)
        bad = verdicts(types, a.min_precision, a.min_recall, 0)
        expect(("email", "precision 0.500 < 0.970") in bad and
               ("credit_card", "recall 0.000 < 0.950") in bad and
               any(t == "generic_secret" for t, _ in bad) and
               not any(t == "jwt" for t, _ in bad), "verdicts", bad)
        rc, out = run("--results", path)
        expect(rc == 1 and "corpus: FAIL" in out and "bodies/b.txt" in out and
               "expected 0 found 1" in out and "expected 1 found 0" in out, "mixed fails", out)
        rc, out = run("--results", path, "--min-precision", "0.5", "--min-recall", "0",
                      "--max-unlabelled-fp", "2")
        expect(rc == 0, "looser thresholds pass", out)
        rc, out = run("--results", path, "--min-precision", "0.5", "--min-recall", "0",
                      "--max-unlabelled-fp", "1")
        expect(rc == 1 and "FAIL generic_secret" in out, "unlabelled limit per type", out)
        rc, out = run("--results", path, "--min-precision", "0.5", "--min-recall", "0",
                      "--ignore-type", "generic_secret", "--ignore-type", "phone")
        expect(rc == 0 and "generic_secret" not in out, "--ignore-type", out)
        rc, out = run("--results", results(os.path.join(tmp, "al.jsonl"), {
            "a.json": [finding("mail", 2), finding("credit_card", 1)], "b.txt": [],
            "c.json": [finding("jwt", 1)]}), "--alias", "mail=email")
        expect(rc == 0, "--alias renames a finding type", out)
        inc = os.path.join(tmp, "inc.jsonl")
        with open(inc, "w") as f:
            for base, fl in perfect.items():
                f.write(json.dumps({"file": os.path.join(corpus, "bodies", base), "api": "json",
                                    "incomplete": base == "c.json", "findings": fl}) + "\n")
        rc, out = run("--results", inc)
        expect(rc == 0 and "read 1 file(s) incompletely: bodies/c.json" in out,
               "incomplete files are noted, not failed", out)
        with open(inc, "w") as f:
            for base, fl in perfect.items():
                f.write(json.dumps({"file": os.path.join(corpus, "bodies", base), "api": "text",
                                    "findings": fl if base != "c.json" else []}) + "\n")
        rc, out = run("--results", inc)
        expect(rc == 1 and "bodies/c.json" in out and "(read as text)" in out and
               "incompletely" not in out, "a miss shows how the scanner read the file", out)
        js = os.path.join(tmp, "s.json")
        rc, out = run("--results", path, "--json", js)
        summary = json.load(open(js))
        expect(summary["pass"] is False and summary["types"]["email"]["precision"] == 0.5,
               "--json summary", summary)

        # 3. unusable output is an error (2), never a score
        bad_cases = {
            "missing file": '{"file": "%s/bodies/a.json", "findings": []}\n' % corpus,
            "not json": "oops\n",
            "duplicate": "".join('{"file": "%s/bodies/%s", "findings": []}\n' % (corpus, n)
                                 for n in ("a.json", "a.json", "b.txt", "c.json")),
            "zero count": "".join('{"file": "%s/bodies/%s", "findings": [%s]}\n' % (
                corpus, n, '{"type": "email", "count": 0}' if n == "a.json" else "")
                for n in ("a.json", "b.txt", "c.json")),
            "unknown file": "".join('{"file": "%s/bodies/%s", "findings": []}\n' % (corpus, n)
                                    for n in ("a.json", "b.txt", "c.json", "zz.json")),
            "scanner error": "".join('{"file": "%s/bodies/%s", %s}\n' % (
                corpus, n, '"error": "EACCES"' if n == "b.txt" else '"findings": []')
                for n in ("a.json", "b.txt", "c.json")),
        }
        for what, text in bad_cases.items():
            p = os.path.join(tmp, "bad.jsonl")
            with open(p, "w") as f:
                f.write(text)
            rc, out = run("--results", p)
            expect(rc == 2 and "unusable scan output" in out, "%s -> exit 2" % what, out)
        with open(os.path.join(corpus, "bodies", "stray.json"), "w") as f:
            f.write("{}")
        rc, out = run("--results", path)
        expect(rc == 2 and "present but unlabelled: bodies/stray.json" in out,
               "a body without labels is an error", out)
        os.unlink(os.path.join(corpus, "bodies", "stray.json"))

        # 4. the real path: a fake scanner, batches of 2, exit status 1 for findings
        fake = os.path.join(tmp, "fake-leakwatch")
        with open(fake, "w") as f:
            f.write(FAKE_SCANNER)
        os.chmod(fake, 0o755)
        answers = os.path.join(tmp, "answers.json")
        with open(answers, "w") as f:
            json.dump(perfect, f)
        log = os.path.join(tmp, "calls.log")
        os.environ.update(FAKE_LOG=log, FAKE_ANSWERS=answers, FAKE_MODE="ok")
        pol = os.path.join(tmp, "pol")
        os.makedirs(pol)
        saved = os.path.join(tmp, "saved.jsonl")
        rc, out = run("--leakwatch", fake, "--policy", pol, "--batch", "2", "--save-results",
                      saved)
        calls = [json.loads(x) for x in open(log)]
        expect(rc == 0 and "corpus: PASS" in out, "fake scanner run passes", out)
        expect(len(calls) == 2 and [len(c) for c in calls] == [7, 6] and
               calls[0][3:5] == ["--policy", pol], "two batches with the policy", calls)
        rc, out = run("--results", saved)
        expect(rc == 0, "saved results score the same", out)
        os.environ["FAKE_MODE"] = "drop"
        rc, out = run("--leakwatch", fake, "--no-policy")
        expect(rc == 2 and "no result for 1 file" in out, "a dropped file is an error", out)
        os.environ["FAKE_MODE"] = "usage"
        rc, out = run("--leakwatch", fake, "--no-policy")
        expect(rc == 2 and "exited with 2" in out and "unknown option" in out,
               "scanner usage error -> exit 2 with its stderr", out)
        rc, out = run("--leakwatch", os.path.join(tmp, "nope"))
        expect(rc == 2 and "not an executable" in out, "missing binary", out)
        rc, out = run("--leakwatch", fake, "--policy", os.path.join(tmp, "nopol"))
        expect(rc == 2 and "does not exist" in out, "missing policy dir", out)
    finally:
        for k in ("FAKE_LOG", "FAKE_ANSWERS", "FAKE_MODE"):
            os.environ.pop(k, None)
        shutil.rmtree(tmp)
    return checks


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
