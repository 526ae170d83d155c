#!/usr/bin/env python3
"""docs/reference.md -> leakwatch(8), so the man page and the reference are
one text. Handles the Markdown that file uses, and fails on anything else
rather than print it wrong: headings (# title(section), ## SECTION,
### subsection), paragraphs, `code`, **bold**, [text](link), "* " lists,
fenced code blocks and pipe tables (one .TP entry per row).

usage: md2man.py --version V --date YYYY-MM-DD < reference.md > leakwatch.8
"""
import argparse
import re
import sys


def esc(text):
    """Plain text -> roff: backslashes, and no line may start with . or '."""
    text = text.replace("\\", "\\e")
    return text


def inline(text):
    out = []
    pos = 0
    for m in re.finditer(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)]+)\)", text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            # in code every hyphen is a minus sign: options must be typed as shown
            out.append("\\fB" + esc(m.group(1)).replace("-", "\\-") + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + esc(m.group(2)) + "\\fR")
        else:
            out.append(esc(m.group(3)))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def line_safe(s):
    return "\\&" + s if s.startswith((".", "'")) else s


def cells(row):
    row = row.strip()
    if not (row.startswith("|") and row.endswith("|")):
        raise ValueError("table row without leading and trailing '|': %r" % row)
    return [c.strip() for c in row[1:-1].split("|")]


def convert(lines, version, date):
    out = []
    i = 0
    n = len(lines)
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.extend(line_safe(inline(p)) for p in para)
            para.clear()

    while i < n:
        ln = lines[i].rstrip("\n")
        if not ln.strip():
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,3}) (.*)$", ln)
        if m:
            flush()
            level, text = len(m.group(1)), m.group(2)
            if level == 1:
                t = re.match(r"^([a-z0-9-]+)\((\d)\)$", text)
                if not t:
                    raise ValueError("title must be NAME(SECTION): %r" % text)
                out.insert(0, '.TH %s %s "%s" "leakwatch %s" "System Administration"'
                           % (t.group(1).upper(), t.group(2), date, version))
                # paths and options must not be broken or stretched
                out.insert(1, ".nh")
                out.insert(2, ".ad l")
            elif level == 2:
                out.append(".SH " + inline(text))
                if text == "NAME":
                    # whatis wants "name \- description" on one line
                    i += 1
                    while not lines[i].strip():
                        i += 1
                    name, _, desc = lines[i].strip().partition(" - ")
                    if not desc:
                        raise ValueError("NAME line must be 'name - description'")
                    out.append("%s \\- %s" % (name, esc(desc)))
            else:
                out.append(".SS " + inline(text))
            i += 1
            continue
        if ln.startswith("```"):
            flush()
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            i += 1
            while i < n and not lines[i].startswith("```"):
                out.append(line_safe(esc(lines[i].rstrip("\n")).replace("-", "\\-")))
                i += 1
            if i == n:
                raise ValueError("unclosed code block")
            out.append(".fi")
            out.append(".RE")
            i += 1
            continue
        if ln.startswith("|"):
            flush()
            head = cells(ln)
            if i + 1 >= n or not re.match(r"^\|[-| :]+\|$", lines[i + 1].strip()):
                raise ValueError("table without a separator row: %r" % ln)
            i += 2
            while i < n and lines[i].startswith("|"):
                row = cells(lines[i])
                if len(row) != len(head):
                    raise ValueError("table row with %d cells, header has %d" % (len(row), len(head)))
                out.append(".TP")
                out.append(line_safe(inline(row[0])))
                if len(row) == 2:
                    out.append(line_safe(inline(row[1])))
                else:
                    # more columns: each after its header, so nothing is lost
                    out.append(line_safe("; ".join("%s: %s" % (esc(h), inline(c))
                                                   for h, c in zip(head[1:], row[1:]))))
                i += 1
            continue
        if ln.startswith("* "):
            flush()
            item = [ln[2:]]
            i += 1
            while i < n and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            out.append(".IP \\(bu 2")
            out.extend(line_safe(inline(p)) for p in item)
            continue
        if re.match(r"^\s*([-+]|\d+\.) ", ln) or ln.startswith(">"):
            raise ValueError("unsupported Markdown: %r" % ln)
        para.append(ln.strip())
        i += 1
    flush()
    if not out or not out[0].startswith(".TH"):
        raise ValueError("no '# name(section)' title")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True)
    ap.add_argument("--date", required=True)
    a = ap.parse_args()
    try:
        sys.stdout.write(convert(sys.stdin.readlines(), a.version, a.date))
    except (ValueError, IndexError) as e:
        print("md2man: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
