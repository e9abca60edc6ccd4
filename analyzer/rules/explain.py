"""``mcxa rules explain``: a rule as numbered steps in plain words, straight from its file."""

from __future__ import annotations

from analyzer.rules import Pattern, Rule


def _value(value) -> str:
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("not", "same_user"):
        return {"not": "other than {}", "same_user": "with the same user part as {}"}[value[0]].format(
            _value(value[1]))
    if isinstance(value, tuple):
        return " or ".join(map(_value, value))
    return f"<{value[1:]}>" if isinstance(value, str) and value.startswith("$") else str(value)


def _pattern(p: Pattern) -> str:
    parts = [_value(v) if k == "kind" else f"{k} {_value(v)}" for k, v in p.constraints]
    text = parts[0] + (" with " + ", ".join(parts[1:]) if parts[1:] else "") if parts else "any event"
    return text + (f" (counts as {p.gives})" if p.gives else "")


def explain(rule: Rule) -> str:
    lines = [f"{rule.id}: {rule.title} ({rule.spec})", f"  file: {rule.path}",
             f"  services: {', '.join(rule.services)}", "",
             f"An instance starts at each {_pattern(rule.anchor)} of a UE",
             f"  binding {', '.join(f'{n} = its {s}' for n, s in rule.bind) or 'nothing'}"
             + ("." if rule.migration is None else ",")]
    if rule.migration is not None:  # a building block (no migration) is judged from its anchor on
        lines.append(f"when the same UE later shows {_pattern(rule.migration)} (binding "
                     f"{', '.join(f'{n} = its {s}' for n, s in rule.bind_migration) or 'nothing'})")
    if rule.ended_by:
        lines.append(f"  and the call was not ended ({_pattern(rule.ended_by)}) more than {rule.window:g} s "
                     "before that.")
    lines += ["", f"Then, each within {rule.window:g} s of the step before unless said otherwise:"]
    for n, step in enumerate(rule.steps, start=1):
        order = f" after step '{step.after}'" if step.after else ""
        within = f", within {step.within:g} s" if step.within is not None else ""
        lines.append(f"  {n}. {step.id}: {step.title}{order}{within}{' (optional)' if step.optional else ''}")
        for i, alt in enumerate(step.match):
            lines.append(f"     {'seen as' if i == 0 else 'or as'} {_pattern(alt)}")
        if step.bind:
            lines.append(f"     remembering {', '.join(f'{n} = its {s}' for n, s in step.bind)}")
        if step.note_unless:
            lines.append(f"     note (info only) unless it has {_pattern(step.note_unless)}: {step.note}")
        if step.spec:
            lines.append(f"     spec: {step.spec}")
    return "\n".join(lines)
