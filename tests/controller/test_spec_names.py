"""Registry names in a sweep file that YAML reads as no string (issue 20.10): `backend: null` unquoted is YAML's
null, not the backend named null; the error says to quote it, and the same for any name YAML reads as a boolean or
a number."""

from __future__ import annotations

import pytest
import yaml

from controller import cli, spec
from jobs import backends, converters, models, registry

TARGET = "dataset: {images: a, labels: b}\ntargets: [{name: t, %s}]\n"
FIELDS = {"backend": backends.REGISTRY.names(), "engine": converters.REGISTRY.names(), "name": list(models.REGISTRY)}


def _error(tmp_path, text: str) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(spec.SpecError) as e:
        spec.load(path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def _sweep(field: str, value: str) -> str:
    if field == "name":
        return f"model: {{name: {value}}}\n" + TARGET % "backend: null"
    return TARGET % f"{field}: {value}"


def test_an_unquoted_null_backend_says_to_quote_it(tmp_path, capsys):
    message = _error(tmp_path, TARGET % "backend: null")
    assert message.endswith('targets[0].backend: expected a non-empty string, got nothing: unquoted, YAML reads null '
                            'as nothing; for backend null write backend: "null" (quoted)')
    assert cli.main(["plan", str(tmp_path / "sweep.yaml")]) == 2  # errors.BadInput, one line
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "sweep.yaml").write_text(TARGET % 'backend: "null"')
    assert spec.load(tmp_path / "sweep.yaml").targets[0].backend == "null"


def test_every_registry_name_that_yaml_misreads_is_named_quoted(tmp_path):
    misread = [(field, n) for field, names in FIELDS.items() for n in names if not isinstance(yaml.safe_load(n), str)]
    assert ("backend", "null") in misread  # the check below looks at something
    for field, name in misread:
        message = _error(tmp_path, _sweep(field, name))
        assert f'for {field} {name} write {field}: "{name}" (quoted)' in message


@pytest.mark.parametrize("setting, got", [
    ("backend: ~", 'got nothing: unquoted, YAML reads null as nothing; for backend null write backend: "null"'),
    ("engine: off", "got False (YAML reads yes, no, on, off, true and false unquoted as a boolean: a name spelled "
                    "so must be quoted)"),
    ("device: 0", "got 0 (YAML reads 1 and 0.5 unquoted as a number: a name spelled so must be quoted)"),
    ("input_mode: null", "got nothing (YAML reads null, ~ and an empty value unquoted as nothing"),
    ("batch_sizes: null", "batch_sizes: expected a non-empty list of integers >= 1, got None"),  # no name expected
])
def test_other_values_yaml_reads_as_no_string_say_how_it_read_them(tmp_path, setting, got):
    assert got in _error(tmp_path, TARGET % setting)


def test_the_hint_names_whichever_registry_name_yaml_reads_so():
    assert registry.unquoted_hint(True, ["atc", "on"], "engine") == ('True: unquoted, YAML reads on as a boolean; '
                                                                      'for engine on write engine: "on" (quoted)')
    assert registry.unquoted_hint(1.0, ["1.0"], "model").endswith('write model: "1.0" (quoted)')
    assert registry.unquoted_hint("null", ["null"], "backend") == ""  # quoted: a string, nothing to say
    assert registry.unquoted_hint([None], ["null"], "backend") == ""


@pytest.mark.parametrize("value, read", [("null", "got nothing (YAML reads null"), ("yes", "got True (YAML reads yes"),
                                         ("1", "got 1 (YAML reads")])
def test_an_unquoted_option_value_says_how_yaml_read_it(tmp_path, value, read):
    message = _error(tmp_path, TARGET % f'backend: "null", backend_options: {{logits: {value}}}')
    assert "targets[0].backend_options.logits: expected one of ramp, tied, nonfinite, " + read in message
    assert "must be quoted" in message


def test_an_option_value_that_names_a_choice_yaml_misreads_is_named_quoted():
    detail = "expected one of on, off, got True"  # a choice spelled as YAML's boolean
    assert registry.option_detail(detail, {"mode": True}, "mode") == (
        'expected one of on, off, got True: unquoted, YAML reads on as a boolean; for mode on write mode: "on" (quoted)')
    assert registry.option_detail(detail, {"mode": "x"}, "mode") == detail  # a string: nothing to add
