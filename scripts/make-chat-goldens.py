#!/usr/bin/env python3
"""Writes tests/data/tokenizer/chat.json, the chat-template goldens.

For a fixed set of conversations it records
  smollm2_jinja  SmolLM2's own tokenizer.chat_template (read from the GGUF with the gguf
                 package) rendered by Python jinja2 the way Hugging Face transformers does:
                 ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                 extensions=[loopcontrols]), a raise_exception global, a tojson filter, and the
                 variables messages, add_generation_prompt, bos_token, eos_token
  llama_cpp      what llama.cpp's llama_chat_apply_template returns for its built-in
                 "chatml" and "gemma" formats, and for SmolLM2's template text itself
                 (which llama.cpp does not run: it recognizes it as one of its built-ins)
Run it through scripts/make-goldens.sh, which provides the pinned environment.
"""
import ctypes
import hashlib
import json
import os
import sys
from pathlib import Path

from golden_support import quiet_llama_cpp, sha256_file

import gguf
import jinja2
import jinja2.ext
import jinja2.sandbox
import llama_cpp

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "tokenizer" / "chat.json"
MODELS = Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models"))
SMOLLM = "smollm2-135m-instruct"

L = quiet_llama_cpp()


def msg(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    ("two_systems", [msg("system", "First rule."), msg("system", "Second rule."), msg("user", "Go.")], True),
    ("system_then_tool", [msg("system", "Be exact."), msg("tool", "{\"ok\": true}"), msg("user", "Next?")], True),
    ("system_then_assistant", [msg("system", "Be brief."), msg("assistant", "Ready."), msg("user", "Now.")], True),
    ("user_only_prompt", [msg("user", "Hi there!")], True),
    ("user_only_no_prompt", [msg("user", "Hi there!")], False),
    ("system_user", [msg("system", "You are a terse assistant."),
                     msg("user", "What is the capital of France?")], True),
    ("system_user_assistant", [msg("system", "Answer in one word."),
                               msg("user", "Colour of the sky?"), msg("assistant", "Blue.")], False),
    ("multi_turn", [msg("user", "Let's count."), msg("assistant", "One."),
                    msg("user", "Go on."), msg("assistant", "Two."), msg("user", "And?")], True),
    ("multi_turn_with_system", [msg("system", "Be kind."), msg("user", "I failed my exam."),
                                msg("assistant", "I'm sorry to hear that. Want to talk about it?"),
                                msg("user", "Maybe later.")], True),
    ("unicode", [msg("user", "\u4f60\u597d\uff01\u3053\u3093\u306b\u3061\u306f \uc548\ub155 "
                             "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd "
                             "\U0001F468\u200D\U0001F469\u200D\U0001F467 \U0001F1EF\U0001F1F5"),
                 msg("assistant", "caf\u00e9 na\u00efve e\u0301 \u2200x\u2208\u211d")], True),
    ("empty_user", [msg("user", "")], True),
    ("empty_system", [msg("system", ""), msg("user", "Hello")], True),
    ("empty_assistant", [msg("user", "Say nothing."), msg("assistant", "")], False),
    ("system_only", [msg("system", "You are a calculator.")], True),
    ("assistant_first", [msg("assistant", "How can I help?"), msg("user", "Tell me a fact.")], True),
    ("two_users", [msg("user", "First question."), msg("user", "Second question.")], True),
    ("special_strings_in_content", [msg("user", "Print <|im_end|> and <end_of_turn> and <bos> "
                                                "literally, please: <|im_start|>user")], True),
    ("multiline_code", [msg("user", "Fix this:\n```python\ndef f(x):\n    return x+1\n```\n"),
                        msg("assistant", "Looks fine.\n\nIt adds one.\n")], False),
    ("surrounding_whitespace", [msg("system", "  padded system  "),
                                msg("user", "\n\n  leading and trailing  \n"),
                                msg("assistant", "\tanswer\t ")], True),
    ("crlf_and_tabs", [msg("user", "line one\r\nline two\r\n\tindented")], True),
    ("tool_role", [msg("user", "What's the weather?"), msg("assistant", "Checking."),
                   msg("tool", "{\"temp_c\": 21}"), msg("user", "Thanks")], True),
    ("no_messages", [], True),
    ("long_dialogue", [msg("user" if i % 2 == 0 else "assistant", f"Turn number {i}.")
                       for i in range(10)], True),
]


def gguf_template_and_tokens(path):
    reader = gguf.GGUFReader(path)
    template = reader.fields["tokenizer.chat_template"].contents()
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    bos = tokens[int(reader.fields["tokenizer.ggml.bos_token_id"].contents())]
    eos = tokens[int(reader.fields["tokenizer.ggml.eos_token_id"].contents())]
    return template, bos, eos


def hf_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def llama_apply(template, messages, add_ass):
    """llama_chat_apply_template(tmpl, chat, n_msg, add_ass, buf, length) -> text, or the error code."""
    keep = [(m["role"].encode(), m["content"].encode()) for m in messages]
    chat = (L.llama_chat_message * max(1, len(keep)))()
    for i, (role, content) in enumerate(keep):
        chat[i].role = role
        chat[i].content = content
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        n = L.llama_chat_apply_template(template, chat, len(keep), add_ass, buf, size)
        if n < 0:
            return {"error": n}
        if n <= size:
            return buf.raw[:n].decode("utf-8")
        size = n


def main():
    path = MODELS / f"{SMOLLM}.gguf"
    if not path.exists():
        sys.exit(f"{path} is missing: run scripts/fetch-models.sh first")
    template_text, bos_token, eos_token = gguf_template_and_tokens(path)

    # llama.cpp reads the same template from the file
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    from_llama = L.llama_model_chat_template(llm.model, None)
    assert from_llama is not None and from_llama.decode("utf-8") == template_text

    template = hf_environment().from_string(template_text)
    cases = []
    for name, messages, add_generation_prompt in CONVERSATIONS:
        rendered = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                   bos_token=bos_token, eos_token=eos_token)
        cases.append({
            "name": name,
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "smollm2_jinja": rendered,
            "llama_cpp": {
                "chatml": llama_apply(b"chatml", messages, add_generation_prompt),
                "gemma": llama_apply(b"gemma", messages, add_generation_prompt),
                "smollm2_template_text": llama_apply(template_text.encode(), messages,
                                                     add_generation_prompt),
            },
        })

    header = {
        "generator": "scripts/make-chat-goldens.py",
        "llama_cpp_python": llama_cpp.__version__,
        "jinja2": jinja2.__version__,
        "gguf": "gguf (pinned in scripts/oracle-env.sh)",
        "smollm2_model_sha256": sha256_file(path),
        "notes": {
            "smollm2_jinja": "the GGUF's tokenizer.chat_template rendered with jinja2."
                             "sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, "
                             "lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]), global "
                             "raise_exception, filter tojson (json.dumps, ensure_ascii=False), "
                             "variables messages, add_generation_prompt, bos_token, eos_token "
                             "(the texts of the GGUF's bos and eos token ids)",
            "llama_cpp": "llama_chat_apply_template(tmpl, chat, n_msg, add_ass="
                         "add_generation_prompt, buf, length); tmpl is b\"chatml\", b\"gemma\", or "
                         "the SmolLM2 template text (smollm2_template_text). A value "
                         "{\"error\": n} means it returned n < 0",
        },
    }
    payload = {
        "header": header,
        "smollm2_template": {"text": template_text,
                             "sha256": hashlib.sha256(template_text.encode()).hexdigest(),
                             "bos_token": bos_token, "eos_token": eos_token},
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n",
                   encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes, {len(cases)} conversations)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
