"""Command templates in shell mode: each value is one quoted word, and only where the shell
reads a plain word; a template that puts a value anywhere else is refused (issue 9, obs. 13).
The rendered commands run in the real /bin/sh."""

import subprocess
from pathlib import Path

import pytest

from wq.base.errors import ConfigError
from wq.work.command_template import CommandTemplate, RenderFailed

# Quotes of both kinds, a command substitution, backquotes, a newline and a glob.
HOSTILE = "a b'c\"$(touch MARK)`touch MARK`\ntouch MARK; *"


def run_shell(args: list[str], value: object, tmp_path: Path) -> str:
    argv = CommandTemplate(args, shell=True).render(value)
    assert argv[:2] == ["/bin/sh", "-c"]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "MARK").exists(), "the value ran as code"
    return result.stdout


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("printf '%s|' {{ item }}", "V|"),
        ("printf '%s|' a{{ item }}b", "aVb|"),
        ('x={{ item }}; printf "%s|" "$x"', "V|"),
        ("printf '%s|' \"$(printf %s {{ item }})\"", "V|"),
        ("case {{ item }} in *) printf '%s|' {{ item }};; esac", "V|"),
        ("cat <<EOF\nhere\nEOF\nprintf '%s|' {{ item }}", "here\nV|"),
        ("cat <<'EOF' # it's\n'\nEOF\nprintf '%s|' {{ item }}", "'\nV|"),
        ("printf '%s|' {{ item }} # it's", "V|"),
        ("printf '%s|' {{ item ~ \"'}}\" }}", "V'}}|"),
        ('{% macro at(p) %}/d/{{ p }}{% endmacro %}printf "%s|" {{ at(item) }}', "/d/V|"),
        # A filter block sees slots, not values: it cannot strip a value's quoting.
        ("printf '%s|' {% filter replace(\"'\", '') %}{{ item }}{% endfilter %}", "V|"),
        ("printf '%s|' {% filter upper %}{{ item }}{% endfilter %}", "V|"),
        ("printf '%s|' {{ '' }}{{ item }}", "V|"),
        ('{% macro at(p) %}[{{ p }}]{% endmacro %}printf "%s|" {{ at("") }}', "[]|"),
    ],
)
def test_shell_values_are_one_literal_word(line: str, output: str, tmp_path: Path) -> None:
    assert run_shell([line], HOSTILE, tmp_path) == output.replace("V", HOSTILE)


def test_shell_joins_arguments_and_quotes_each_value(tmp_path: Path) -> None:
    args = ["printf", "'%s|'", "{{ item.a }}", "{{ item.b }}", "{{ item.c }}"]
    value = {"a": HOSTILE, "b": "", "c": None}
    assert run_shell(args, value, tmp_path) == f"{HOSTILE}||null|"


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["echo '{{ item }}'"], "inside single quotes"),
        (['echo "{{ item }}"'], "inside double quotes"),
        (['echo "x-{{ item.src }}.png"'], "inside double quotes"),
        (["echo", "'", "{{ item }}", "'"], "inside single quotes"),
        (["echo \"$(echo '{{ item }}')\""], "inside single quotes"),
        (["echo `echo {{ item }}`"], "inside backquotes"),
        (['echo "`echo {{ item }}`"'], "inside backquotes"),
        (["echo ${X:-{{ item }}}"], "inside ${...}"),
        (["echo $(( {{ item }} + 1 ))"], "inside $((...))"),
        (["echo \\{{ item }}"], "right after a backslash"),
        (["echo ${{ item }}"], "right after a $"),
        (["echo $'{{ item }}'"], "inside $'...'"),
        (["echo hi # {{ item }}"], "in a comment"),
        (["cat <<EOF\n{{ item }}\nEOF"], "in a here-document"),
        (["cat <<-'EOF'\n\tx {{ item }}\n\tEOF"], "in a here-document"),
        (["cat <<{{ item }}"], "in a here-document's delimiter"),
    ],
)
def test_shell_value_outside_a_plain_word_is_refused_at_start(args: list[str], where: str) -> None:
    with pytest.raises(ConfigError, match=r"^shell command: \{\{ item(\.src)? \}\} is ") as caught:
        CommandTemplate(args, shell=True)
    message = str(caught.value)
    assert where in message
    assert "\n" not in message
    assert "$WQ_ITEM" in message


def test_shell_value_moved_into_quotes_by_the_template_fails_the_item() -> None:
    """The check at start sees the command text; the check at render sees what it became."""
    template = CommandTemplate(["echo {% if item %}'{% else %}'{% endif %}{{ item }}'"], True)
    with pytest.raises(RenderFailed, match="a value would be inside single quotes"):
        template.render("x; touch MARK")


@pytest.mark.parametrize(
    "args",
    [
        ["sh", "-c", "convert {{ item }} out.png"],
        ["/bin/bash", "-euc", "echo {{ item.src }}"],
        ["bash", "-o", "pipefail", "-c", "x {{ item }} | y"],
    ],
)
def test_a_value_in_a_sh_c_script_is_refused_without_shell_mode(args: list[str]) -> None:
    with pytest.raises(ConfigError, match="runs its script as shell code"):
        CommandTemplate(args, shell=False)


@pytest.mark.parametrize(
    "args",
    [
        ["sh", "-c", 'convert "$1" out.png', "sh", "{{ item }}"],
        ["sh", "script.sh", "{{ item }}"],
        ["echo", "-c", "{{ item }}"],
    ],
)
def test_values_as_arguments_of_a_shell_are_fine(args: list[str]) -> None:
    assert CommandTemplate(args, shell=False).render("v")[-1] == "v"


def test_a_nul_character_is_refused() -> None:
    with pytest.raises(ConfigError, match="NUL"):
        CommandTemplate(["echo", "a\x00b"], shell=True)
    for shell in (True, False):
        with pytest.raises(RenderFailed, match="NUL"):
            CommandTemplate(["echo", "{{ item }}"], shell).render("a\x00b")
