"""Golden fixture for ganpo's chat-template renderer, produced by transformers' own `apply_chat_template`.

Renders every template under tests/fixtures/chat_templates/*.jinja (real model templates, each naming its
source in its first line) over a fixed set of conversations, with and without `add_generation_prompt`,
through `PreTrainedTokenizerFast.apply_chat_template(..., tokenize=False)`: the same path a training script
takes, including transformers' message normalization and its special-token variables. It also renders a few
small templates that pin down Jinja/Python semantics ganpo has to reproduce (printing None/True/lists, the
`tojson` options, Python string methods, namespaces, `{% generation %}`), and Python's `strftime` for a set
of formats. `strftime_now` is made deterministic by replacing `datetime` in transformers' chat template
module with a clock fixed at FIXED_NOW.

Writes tests/fixtures/chat_templates/golden.json, read by crates/ganpo/tests/chat_templates.rs.

Run from the repository root:  python tools/golden/chat_templates.py
"""

import datetime as dt
import json
import os
import platform

import jinja2
import tokenizers
import transformers
import transformers.utils.chat_template_utils as ctu
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

DIR = os.path.join("tests", "fixtures", "chat_templates")
FIXED_NOW = dt.datetime(2024, 3, 5, 9, 7, 2)


class FixedClock(dt.datetime):
    """`datetime` whose `now()` is FIXED_NOW: what `strftime_now` sees inside transformers."""

    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


ctu.datetime = FixedClock

LLAMA3_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
SP_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
TEMPLATES = {
    "qwen2.5": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                "unk_token": "<|endoftext|>"},
    "llama3": LLAMA3_TOKENS,
    "llama3.2": LLAMA3_TOKENS,
    "llama3.3": LLAMA3_TOKENS,
    "gemma2": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "mistral-v0.1": SP_TOKENS,
    "mistral-nemo": SP_TOKENS,
    "llama2": SP_TOKENS,
}
TOOL_TEMPLATES = ["qwen2.5", "llama3.2", "llama3.3", "mistral-nemo"]


def msg(role, content, **extra):
    return {"role": role, "content": content, **extra}


CONVERSATIONS = {
    "user": [msg("user", "Hello!")],
    "system_user": [msg("system", "You are a helpful assistant."), msg("user", "What is the capital of France?")],
    "multi_turn": [msg("user", "Hi there"), msg("assistant", "Hello! How can I help?"),
                   msg("user", "  What is 2+2?  \n")],
    "system_multi_turn": [msg("system", " Be brief. "), msg("user", "Hi"), msg("assistant", "Hello."),
                          msg("user", "Bye")],
    "assistant_last": [msg("user", "Write a haiku."), msg("assistant", "Leaves fall\nquietly.")],
    "non_ascii": [msg("user", "Grüß dich! 你好 🌍 — «ça va?»"), msg("assistant", "Très bien, merci ✓ ☕"),
                  msg("user", "Ünïcödé\ttabs\u3000and\u00a0spaces")],
    # Python's str.strip() also strips the ASCII separators \x1c-\x1f, Rust's str::trim() does not.
    "python_whitespace": [msg("user", "\x1c\x1d hi there \x1e\x1f\u2028")],
    "roles_not_alternating": [msg("user", "a"), msg("user", "b")],
    "starts_with_assistant": [msg("assistant", "I start."), msg("user", "ok")],
    # transformers drops keys whose value is None before rendering.
    "none_fields": [msg("user", "Hi", name=None), msg("assistant", "Hello", tool_calls=None)],
}

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Température actuelle — current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]
TOOL_CALL = {"id": "call12345", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}
TOOL_CONVERSATION = [
    msg("user", "What's the weather in Zürich?"),
    {"role": "assistant", "tool_calls": [TOOL_CALL]},
    msg("tool", '{"temperature": 21, "sky": "clear"}', tool_call_id="call12345"),
]
SEARCH_CALL = {"id": "call67890", "type": "function",
               "function": {"name": "brave_search", "arguments": {"query": "weather Zürich"}}}
TOOL_CASES = [
    ("tools", TOOL_CONVERSATION, {}),
    ("tools_system", [msg("system", "Use tools when needed.")] + TOOL_CONVERSATION, {}),
    ("tools_in_system_dated", TOOL_CONVERSATION, {"tools_in_user_message": False, "date_string": "01 Jan 2030"}),
    ("builtin_tools", [msg("user", "Search the weather."), {"role": "assistant", "tool_calls": [SEARCH_CALL]},
                       msg("ipython", "sunny", tool_call_id="call67890")],
     {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]}),
]

X = {"a": [1, 2, {"b": None}], "s": "it's \"quoted\" & <tagged>", "é": "ünï", "n": 1.5, "t": True}
EXPRESSIONS = [
    ("print_python_values", "{{ none }}|{{ true }}|{{ false }}|{{ 1.0 }}|{{ 7 // 2 }}|{{ [1, 'a', none, true] }}"
                            "|{{ {'k': 'v', 'n': 1.5} }}|{{ x }}|{{ x | string }}", {"x": X}),
    ("print_floats", "{% for f in floats %}{{ f }} {% endfor %}", {"floats": [0.1, 1e-05, 0.0001, 1e16, 1e15,
                                                                              1.5e300, -0.0, 3.0, 123.456, 2.5e-7]}),
    ("tojson_default", "{{ x | tojson }}", {"x": X}),
    ("tojson_indent", "{{ x | tojson(indent=2) }}", {"x": X}),
    ("tojson_separators", "{{ x | tojson(separators=(',', ':')) }}", {"x": X}),
    ("tojson_sort_keys", "{{ x | tojson(sort_keys=true) }}", {"x": X}),
    ("tojson_ensure_ascii", "{{ x | tojson(ensure_ascii=true) }}{{ '😀\x01\x7f' | tojson(true) }}", {"x": X}),
    ("tojson_empty_and_floats", "{{ [] | tojson(indent=2) }}{{ {} | tojson(indent=2) }}{{ f | tojson }}",
     {"f": [0.1, 1e-05, 1e16, -0.0, 3.0, 1.5e300]}),
    ("tojson_string_indent", "{{ x | tojson(indent='\t') }}", {"x": {"a": [1, {"b": []}]}}),
    ("string_methods", "{{ '  a b  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}"
                       "|{{ 'Hello'.startswith('He') }}|{{ 'x'.upper() }}|{{ s.strip() }}|{{ s | trim }}"
                       "|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}",
     {"s": "\x1c\x1f pad \x1e\u3000"}),
    ("lengths_and_slices", "{{ 'abcé' | length }}{{ messages | length }}|{{ messages[1:] | map(attribute='role') "
                           "| join(',') }}|{{ 'hello'[1:3] }}|{{ messages[-1].content }}",
     {}, [msg("user", "one"), msg("assistant", "two"), msg("user", "three")]),
    ("namespace_and_loop", "{% set ns = namespace(n=0, last='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                           "{% if loop.last %}{% set ns.last = m.role %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.last }}",
     {}, [msg("user", "one"), msg("assistant", "two")]),
    ("items_order", "{% for k, v in x.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in x | items %}{{ k }};{% endfor %}",
     {"x": {"z": 1, "a": 2, "m": 3}}),
    ("dict_and_mapping_tests", "{{ dict(a=1) }}|{{ x is mapping }}|{{ 's' is string }}|{{ s is iterable }}"
                               "|{{ none is none }}|{{ missing is defined }}", {"x": {}, "s": "str"}),
    ("join_prints_python_values", "{{ [1, true, none, 1.5, 'a'] | join(', ') }}|{{ messages | join('/', attribute='role') }}"
                                  "|{{ x | join }}", {"x": ["a", "b"]}, [msg("user", "one"), msg("assistant", "two")]),
    ("undefined_prints_nothing", "[{{ messages[0].missing }}][{{ missing }}]", {}),
    ("undefined_attribute_errors", "{{ missing.attr }}", {}),
    ("messages_normalized", "{{ messages | tojson }}", {},
     [msg("user", "Hi", name=None), msg("assistant", "Hello", reasoning="Thinking…", tool_calls=None)]),
    ("reasoning_content_alias", "{% for m in messages %}{{ m | tojson }}{% endfor %}", {},
     [msg("assistant", "A", thinking="T1"), msg("assistant", "B", reasoning_content="R", thinking=None)]),
    ("strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %b %B %j %p %I %y %e %-d %%') }}", {}),
    ("raise_exception", "{% if messages | length < 2 %}{{ raise_exception('Need at least two messages, got ' "
                        "~ (messages | length)) }}{% endif %}ok", {}),
    ("generation_block", "{% for m in messages %}{{ m.role }}: {% generation %}{{ m.content }}{% endgeneration %}\n"
                         "{% endfor %}", {}, [msg("user", "q"), msg("assistant", "a")]),
    ("whitespace_control", "a\n    {% if true %}\n    b\n    {% endif %}\nc {{- ' d ' -}} e\n{# comment #}\nf\n", {}),
]

STRFTIME_FORMATS = [
    "%d %b %Y", "%Y-%m-%d", "%H:%M:%S", "%a %A %b %B %h", "%j", "%p %I %P", "%y %C", "%e|%k|%l", "%-d %-m %-H %-j",
    "%_d %_m %0e", "%^a %^B", "%U %W", "%u %w", "%G %V %g", "%c", "%x", "%X", "%D", "%F", "%T", "%R", "%r",
    "%n%t%%", "[%Z][%z]", "%f", "%Ey %Od", "%Q %v", "plain text", "ends with %",
]
STRFTIME_TIMES = [FIXED_NOW, dt.datetime(2023, 12, 31, 23, 59, 59), dt.datetime(2024, 2, 29, 12, 0, 0),
                  dt.datetime(2021, 1, 1, 0, 30, 5), dt.datetime(1999, 7, 4, 15, 45, 9)]


def tokenizer_for(template, special_tokens):
    backend = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    backend.add_special_tokens(sorted(set(special_tokens.values())))
    return PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=template, **special_tokens)


def render(tokenizer, messages, add_generation_prompt, tools=None, kwargs=None):
    try:
        text = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                             tokenize=False, **(kwargs or {}))
        return {"output": text}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises TemplateError itself; engine errors are subclasses (UndefinedError, ...)
        return {"error": str(e), "error_type": type(e).__name__}


def main():
    cases = []
    for name, special in TEMPLATES.items():
        with open(os.path.join(DIR, name + ".jinja"), encoding="utf-8") as f:
            tokenizer = tokenizer_for(f.read(), special)
        for conv_name, messages in CONVERSATIONS.items():
            for agp in (True, False):
                case = {"template": name, "conversation": conv_name, "messages": messages,
                        "add_generation_prompt": agp}
                cases.append({**case, **render(tokenizer, messages, agp)})
        if name in TOOL_TEMPLATES:
            for conv_name, messages, kwargs in TOOL_CASES:
                case = {"template": name, "conversation": conv_name, "messages": messages, "tools": TOOLS,
                        "kwargs": kwargs, "add_generation_prompt": True}
                cases.append({**case, **render(tokenizer, messages, True, TOOLS, kwargs)})

    expressions = []
    tokenizer_special = {"bos_token": "<s>", "eos_token": "</s>"}
    for name, template, kwargs, *rest in EXPRESSIONS:
        messages = rest[0] if rest else [msg("user", "x")]
        tokenizer = tokenizer_for(template, tokenizer_special)
        case = {"name": name, "template": template, "messages": messages, "kwargs": kwargs}
        expressions.append({**case, **render(tokenizer, messages, False, None, kwargs)})

    strftime = [{"time": t.isoformat(), "format": f, "output": t.strftime(f)}
                for t in STRFTIME_TIMES for f in STRFTIME_FORMATS]

    golden = {
        "header": {
            "generator": "tools/golden/chat_templates.py",
            "python": platform.python_version(),
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "jinja2": jinja2.__version__,
            "fixed_now": FIXED_NOW.isoformat(),
            "expression_special_tokens": tokenizer_special,
        },
        "templates": {name: {"file": name + ".jinja", "special_tokens": special}
                      for name, special in TEMPLATES.items()},
        "cases": cases,
        "expressions": expressions,
        "strftime": strftime,
    }
    with open(os.path.join(DIR, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum("error" in c for c in cases)
    print(f"{len(cases)} template cases ({errors} errors), {len(expressions)} expressions, {len(strftime)} strftime")


if __name__ == "__main__":
    main()
