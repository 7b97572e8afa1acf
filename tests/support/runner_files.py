"""The runner's side of the files an Actions step writes."""

from __future__ import annotations


def parse_outputs(text: str) -> dict[str, str]:
    """Read GITHUB_OUTPUT the way the runner does (name<<DELIM ... DELIM)."""
    out, lines = {}, iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        name, delim = line.split("<<", 1)
        value = []
        for inner in lines:
            if inner == delim:
                break
            value.append(inner)
        out[name] = "\n".join(value)
    return out
