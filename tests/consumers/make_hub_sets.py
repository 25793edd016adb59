"""Writes small sets in the schemas of the Hub's distillation datasets, from real data, as JSONL and
as Parquet with the nested types the Hub's files have, plus what a reader of them should find.

    python make_hub_sets.py OUTDIR [--rows N] [--jsonl-only]

For each schema NAME it writes OUTDIR/NAME.jsonl and its twin OUTDIR/NAME.parquet (pyarrow, an
explicit schema as `datasets` writes it: list<string>, list<bool>, list<struct<...>>, structs inside
messages), one downloaded-folder layout OUTDIR/OpenR1-Math-220k/ (README.md with the card's YAML,
.gitattributes, data/train-0000{0,1}-of-00002.parquet), and OUTDIR/expected.json: per file the
rows, prompts, samples and stored verdicts the rows hold, counted here from the rows written.
`--rows N` keeps the first N rows of each kind of row in each set (and of each shard); `--jsonl-only` writes the JSONL
files alone, no Parquet and no folder (tests/fixtures/hub/ is made with `--rows 2 --jsonl-only`).

The field names and types follow the datasets' cards (open-r1/OpenR1-Math-220k,
open-thoughts/OpenThoughts-114k and its `metadata` config, open-thoughts/OpenThoughts3-1.2M,
bespokelabs/Bespoke-Stratos-17k, simplescaling/s1K and s1K-1.1, AI-MO/NuminaMath-CoT,
nvidia/Nemotron-Post-Training-Dataset-v1, nvidia/Llama-Nemotron-Post-Training-Dataset,
a-m-team/AM-DeepSeek-R1-Distilled-1.4M). The texts are not those datasets' (they are not here): they
are real generations and problems from ../shared/data, put in those shapes:

- skythought/: Sky-T1 14B/27B and Qwen2.5-14B-Instruct generations on MATH500, AMC23 and AIME24
  with their stored verdicts (`score`); a Sky-T1 trace is `<|begin_of_thought|>...<|end_of_thought|>
  <|begin_of_solution|>...<|end_of_solution|>`, and schemas that use `<think>` get the same
  thought and solution in `<think>\\n...\\n</think>\\n\\n...`;
- MATH500's worked solutions (`gt_cot`, written by people) for NuminaMath-CoT's `solution`;
- chat-formats/: LLaMA-Factory's glaive tool-call and alpaca demos (Nemotron's tool calling and chat);
- gsm8k/test.jsonl: grade-school problems with worked answers (Llama-Nemotron chat rows).

Teacher names in fields a schema has for them (`generator`) are the models that wrote the text; in
schemas that name the teacher by a field's prefix (s1K-1.1's `gemini_*`/`deepseek_*`, OpenThoughts'
`deepseek_*`) the prefix is the schema's, the text is Sky-T1's. Rows are picked deterministically
(no randomness): the same data gives the same files.
"""

import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data"

THOUGHT_OPEN, THOUGHT_CLOSE = "<|begin_of_thought|>", "<|end_of_thought|>"
SOLUTION_OPEN, SOLUTION_CLOSE = "<|begin_of_solution|>", "<|end_of_solution|>"

# The system prompt Sky-T1 / OpenThoughts-114k / Bespoke-Stratos send with every problem (abridged
# to its first sentences; the datasets carry it whole in `system`).
SKY_SYSTEM = (
    "Your role as an assistant involves thoroughly exploring questions through a systematic long "
    "thinking process before providing the final precise and accurate solutions. This requires "
    "engaging in a comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, "
    "backtracing, and iteration to develop well-considered thinking process. Please structure your "
    "response into two main sections: Thought and Solution."
)


def jsonl(path):
    with open(os.path.join(DATA, path), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def split_sky(trace):
    """(thought, solution) of a Sky-T1 trace with both markers closed, else None."""
    if THOUGHT_OPEN not in trace or THOUGHT_CLOSE not in trace or SOLUTION_OPEN not in trace:
        return None
    thought = trace.split(THOUGHT_OPEN, 1)[1].split(THOUGHT_CLOSE, 1)[0].strip()
    solution = trace.split(SOLUTION_OPEN, 1)[1].split(SOLUTION_CLOSE, 1)[0].strip()
    if not thought or not solution:
        return None
    return thought, solution


def think(thought, solution):
    return f"<think>\n{thought}\n</think>\n\n{solution}"


def marked(rows):
    """The rows whose first generation has a whole Sky-T1 thought and solution."""
    return [r for r in rows if split_sky(r["code"][0])]


def prompt_key(turns):
    return json.dumps(turns, ensure_ascii=False, sort_keys=True)


ROWS = None  # --rows
JSONL_ONLY = False  # --jsonl-only


class Set:
    """Rows of one schema and what they hold, counted as they are added."""

    def __init__(self, name, schema):
        self.name, self.schema, self.rows = name, schema, []
        self.prompts, self.samples, self.verdicts = set(), 0, 0
        self.groups = {}

    def add(self, row, prompt_turns, samples, verdicts=0, group=""):
        """Adds a row giving `samples` samples and `verdicts` stored verdicts; `group` is the kind
        of row (reasoning on or off, tool calls...), --rows keeps that many of each."""
        if ROWS is not None and self.groups.get(group, 0) >= ROWS:
            return
        self.groups[group] = self.groups.get(group, 0) + 1
        missing = [f.name for f in self.schema if f.name not in row]
        extra = [k for k in row if self.schema.get_field_index(k) < 0]
        assert not missing and not extra, (self.name, missing, extra)
        self.rows.append(row)
        self.prompts.add(prompt_key(prompt_turns))
        self.samples += samples
        self.verdicts += verdicts

    def counts(self):
        return {"rows": len(self.rows), "prompts": len(self.prompts), "samples": self.samples, "verdicts": self.verdicts}


def write(out, s, expected):
    with open(os.path.join(out, s.name + ".jsonl"), "w", encoding="utf-8") as f:
        for row in s.rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    expected[s.name + ".jsonl"] = s.counts()
    if not JSONL_ONLY:
        pq.write_table(pa.Table.from_pylist(s.rows, schema=s.schema), os.path.join(out, s.name + ".parquet"))
        expected[s.name + ".parquet"] = s.counts()


S, I64, BOOL = pa.string(), pa.int64(), pa.bool_()
CHAT = pa.list_(pa.struct([("content", S), ("role", S)]))
SHAREGPT = pa.list_(pa.struct([("from", S), ("value", S)]))

OPENR1 = pa.schema([
    ("problem", S), ("solution", S), ("answer", S), ("problem_type", S), ("question_type", S), ("source", S),
    ("uuid", S), ("is_reasoning_complete", pa.list_(BOOL)), ("generations", pa.list_(S)),
    ("correctness_math_verify", pa.list_(BOOL)), ("correctness_llama", pa.list_(BOOL)),
    ("finish_reasons", pa.list_(S)), ("correctness_count", I64), ("messages", CHAT),
])


def openr1_rows(sky, qwen, start, count):
    """OpenR1-Math-220k rows: a MATH500 problem with two generations (Sky-T1 27B in `<think>`, Qwen2.5
    14B Instruct without) and their stored verdicts as `correctness_math_verify`; every other row
    also has a `correctness_llama` list with a null where the judge was not asked."""
    out = []
    pairs = [(a, b) for a, b in zip(sky, qwen) if split_sky(a["code"][0])]
    for n, (a, b) in enumerate(pairs[start:start + count]):
        thought, solution = split_sky(a["code"][0])
        generations = [think(thought, solution), b["code"][0]]
        verify = [bool(a["score"][0]), bool(b["score"][0])]
        llama = None if n % 2 == 0 else [None, bool(b["score"][0])]
        row = {
            "problem": a["question"], "solution": a["gt_cot"], "answer": a["gt"],
            "problem_type": "Algebra", "question_type": "math-word-problem", "source": "math500",
            "uuid": f"math500-{a['idx']:04d}", "is_reasoning_complete": [True, True], "generations": generations,
            "correctness_math_verify": verify, "correctness_llama": llama,
            "finish_reasons": None if n % 3 else ["stop", "stop"],
            "correctness_count": sum(verify),
            "messages": [{"content": a["question"], "role": "user"}, {"content": generations[0], "role": "assistant"}],
        }
        verdicts = len(verify) + (0 if llama is None else sum(v is not None for v in llama))
        out.append((row, [["user", a["question"]]], 2, verdicts))
    return out


def write_openr1_folder(out, sky27, qwen, expected):
    """OpenR1-Math-220k as downloaded: card, .gitattributes, two Parquet shards of other rows."""
    folder = os.path.join(out, "OpenR1-Math-220k")
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    shards = [Set("train-00000-of-00002", OPENR1), Set("train-00001-of-00002", OPENR1)]
    for i, (row, turns, n, v) in enumerate(openr1_rows(sky27, qwen, 12, 16)):
        shards[i // 8].add(row, turns, n, v)
    for shard in shards:
        pq.write_table(pa.Table.from_pylist(shard.rows, schema=OPENR1), os.path.join(folder, "data", shard.name + ".parquet"))
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
        f.write(OPENR1_CARD.replace("NUM_EXAMPLES", str(sum(len(x.rows) for x in shards))))
    with open(os.path.join(folder, ".gitattributes"), "w", encoding="utf-8") as f:
        f.write(GITATTRIBUTES)
    prompts = set().union(*(x.prompts for x in shards))
    expected["OpenR1-Math-220k/"] = {
        "rows": sum(len(x.rows) for x in shards), "prompts": len(prompts),
        "samples": sum(x.samples for x in shards), "verdicts": sum(x.verdicts for x in shards),
    }


def main(out):
    os.makedirs(out, exist_ok=True)
    expected = {}
    sky27 = jsonl("skythought/sky-t1-27b_math500.jsonl")
    qwen = jsonl("skythought/qwen2.5-14b-instruct_math500.jsonl")
    amc = jsonl("skythought/sky-t1-14b_amc23.jsonl")
    amc_wrong = jsonl("skythought/sky-t1-wrong-14b_amc23.jsonl")
    aime = jsonl("skythought/sky-t1-14b_aime24.jsonl")
    gsm8k = jsonl("gsm8k/test.jsonl")
    with open(os.path.join(DATA, "chat-formats", "llamafactory_glaive_toolcall_en_demo.json"), encoding="utf-8") as f:
        glaive = json.load(f)
    with open(os.path.join(DATA, "chat-formats", "llamafactory_alpaca_en_demo.json"), encoding="utf-8") as f:
        alpaca = json.load(f)

    # OpenR1-Math-220k: a file, and a downloaded folder of two shards with other rows.
    s = Set("OpenR1-Math-220k", OPENR1)
    for row, turns, n, v in openr1_rows(sky27, qwen, 0, 12):
        s.add(row, turns, n, v)
    write(out, s, expected)
    if not JSONL_ONLY:
        write_openr1_folder(out, sky27, qwen, expected)


    # OpenThoughts-114k (default config) and Bespoke-Stratos-17k: `system` and Sky-T1 traces as
    # `user`/`assistant` conversations.
    sets = [
        ("OpenThoughts-114k", [("aime24", r) for r in marked(aime)[:8]] + [("math500", r) for r in marked(sky27)[40:44]]),
        ("Bespoke-Stratos-17k", [("amc23", r) for r in marked(amc)[:12]]),
    ]
    for name, rows in sets:
        s = Set(name, pa.schema([("system", S), ("conversations", SHAREGPT)]))
        for group, r in rows:
            s.add({"system": SKY_SYSTEM, "conversations": [{"from": "user", "value": r["question"]}, {"from": "assistant", "value": r["code"][0]}]},
                  [["user", r["question"]]], 1, group=group)
        write(out, s, expected)

    # OpenThoughts-114k, `metadata` config: the teacher's reasoning and solution apart.
    s = Set("OpenThoughts-114k-metadata", pa.schema([
        ("problem", S), ("deepseek_reasoning", S), ("deepseek_solution", S), ("ground_truth_solution", S),
        ("domain", S), ("source", S), ("test_cases", S), ("starter_code", S),
    ]))
    for r in marked(sky27)[60:72]:
        thought, solution = split_sky(r["code"][0])
        s.add({"problem": r["question"], "deepseek_reasoning": thought, "deepseek_solution": solution,
               "ground_truth_solution": r["gt_cot"], "domain": "math", "source": "math500", "test_cases": None, "starter_code": None},
              [["user", r["question"]]], 1)
    write(out, s, expected)

    # OpenThoughts3-1.2M: `human`/`gpt` conversations with `<think>`, difficulty, source, domain.
    s = Set("OpenThoughts3-1.2M", pa.schema([("difficulty", I64), ("source", S), ("domain", S), ("conversations", SHAREGPT)]))
    for r in marked(sky27)[80:92]:
        thought, solution = split_sky(r["code"][0])
        s.add({"difficulty": int(r["level"]) * 2, "source": "math500", "domain": "math",
               "conversations": [{"from": "human", "value": r["question"]}, {"from": "gpt", "value": think(thought, solution)}]},
              [["user", r["question"]]], 1)
    write(out, s, expected)

    # s1K: one thinking trajectory (a list of one string) and an attempt; `cot` is null.
    s = Set("s1K", pa.schema([
        ("solution", S), ("question", S), ("cot_type", S), ("source_type", S), ("metadata", S), ("cot", pa.null()),
        ("thinking_trajectories", pa.list_(S)), ("attempt", S),
    ]))
    for r in marked(sky27)[100:112]:
        thought, solution = split_sky(r["code"][0])
        s.add({"solution": r["gt"], "question": r["question"], "cot_type": "math", "source_type": "HuggingFaceH4/MATH-500",
               "metadata": json.dumps({"level": r["level"], "unique_id": r["idx"]}), "cot": None,
               "thinking_trajectories": [thought], "attempt": solution},
              [["user", r["question"]]], 1)
    write(out, s, expected)

    # s1K-1.1: two teachers per row, `gemini_*` strings and `deepseek_*` lists (as in one release).
    s = Set("s1K-1.1", pa.schema([
        ("solution", S), ("question", S), ("cot_type", S), ("source_type", S), ("metadata", S),
        ("gemini_thinking_trajectory", S), ("gemini_attempt", S),
        ("deepseek_thinking_trajectory", pa.list_(S)), ("deepseek_attempt", pa.list_(S)),
    ]))
    both = [(a, b) for a, b in zip(amc, amc_wrong) if split_sky(a["code"][0]) and split_sky(b["code"][0])]
    for a, b in both[:10]:
        (ta, sa), (tb, sb) = split_sky(a["code"][0]), split_sky(b["code"][0])
        s.add({"solution": a["gt"], "question": a["question"], "cot_type": "math", "source_type": "amc23",
               "metadata": json.dumps({"idx": a["idx"]}), "gemini_thinking_trajectory": ta, "gemini_attempt": sa,
               "deepseek_thinking_trajectory": [tb], "deepseek_attempt": [sb]},
              [["user", a["question"]]], 2)
    write(out, s, expected)

    # NuminaMath-CoT: MATH500's worked solutions, written by people, with the same as a chat.
    s = Set("NuminaMath-CoT", pa.schema([("source", S), ("problem", S), ("solution", S), ("messages", CHAT)]))
    for r in sky27[200:214]:
        s.add({"source": "math", "problem": r["question"], "solution": r["gt_cot"],
               "messages": [{"content": r["question"], "role": "user"}, {"content": r["gt_cot"], "role": "assistant"}]},
              [["user", r["question"]]], 1)
    write(out, s, expected)

    # Nemotron-Post-Training-Dataset-v1: math with reasoning on (Sky-T1) and off (Qwen), tool calling
    # (glaive's calls as OpenAI tool calls, `tool` turns for the observations).
    tool_call = pa.struct([("id", S), ("type", S), ("function", pa.struct([("name", S), ("arguments", S)]))])
    s = Set("Nemotron-Post-Training-Dataset-v1", pa.schema([
        ("uuid", S), ("license", S), ("generator", S), ("version", S), ("category", S), ("reasoning", S),
        ("messages", pa.list_(pa.struct([("role", S), ("content", S), ("tool_calls", pa.list_(tool_call))]))),
        ("metadata", S),
    ]))

    def nemotron(uuid, generator, category, reasoning, turns, answer, calls=None):
        messages = [{"role": "system", "content": "", "tool_calls": None}]
        messages += [{"role": t["role"], "content": t["content"], "tool_calls": t.get("tool_calls")} for t in turns]
        messages.append({"role": "assistant", "content": answer, "tool_calls": calls})
        return {"uuid": uuid, "license": "CC BY 4.0", "generator": generator, "version": "v1", "category": category,
                "reasoning": reasoning, "messages": messages, "metadata": json.dumps({"origin": "retort test data"})}

    for r in marked(sky27)[120:126]:
        thought, solution = split_sky(r["code"][0])
        s.add(nemotron(f"sky-{r['idx']}", "Sky-T1-math-correct-5K-27B", "math", "on", [{"role": "user", "content": r["question"]}],
                       think(thought, solution)), [["user", r["question"]]], 1, group="on")
    for r in qwen[300:306]:
        s.add(nemotron(f"qwen-{r['idx']}", "Qwen2.5-14B-Instruct", "math", "off", [{"role": "user", "content": r["question"]}],
                       r["code"][0]), [["user", r["question"]]], 1, group="off")
    used = 0
    for n, g in enumerate(glaive):
        conv = g["conversations"]
        if used == 4 or [t["from"] for t in conv[-4:]] != ["human", "function_call", "observation", "gpt"]:
            continue
        turns, key = [], []
        for i, t in enumerate(conv[:-1]):
            if t["from"] == "function_call":
                call = json.loads(t["value"])
                args = call.get("arguments", {})
                turns.append({"role": "assistant", "content": "", "tool_calls": [{
                    "id": f"call_{n}_{i}", "type": "function",
                    "function": {"name": call["name"], "arguments": args if isinstance(args, str) else json.dumps(args)}}]})
            else:
                role = {"human": "user", "gpt": "assistant", "observation": "tool"}[t["from"]]
                turns.append({"role": role, "content": t["value"]})
            key.append([turns[-1]["role"], turns[-1]["content"], turns[-1].get("tool_calls")])
        s.add(nemotron(f"glaive-{n}", "glaive-function-calling-v2", "tool_calling", "off", turns, conv[-1]["value"]), key, 1, group="tools")
        used += 1
    write(out, s, expected)

    # Llama-Nemotron-Post-Training-Dataset (JSONL): `input` messages, `output` with `<think>` when
    # reasoning is on, the system prompt that switches it.
    s = Set("Llama-Nemotron-Post-Training-Dataset", pa.schema([
        ("input", CHAT), ("output", S), ("category", S), ("license", S), ("reasoning", S), ("generator", S),
        ("used_in_training", S), ("version", S), ("system_prompt", S),
    ]))

    def llama_nemotron(question, output, category, reasoning, generator):
        return {"input": [{"content": question, "role": "user"}], "output": output, "category": category, "license": "cc-by-4.0",
                "reasoning": reasoning, "generator": generator, "used_in_training": "Ultra, Super, Nano", "version": "v1.1",
                "system_prompt": f"detailed thinking {reasoning}"}

    for r in marked(aime)[:6]:
        thought, solution = split_sky(r["code"][0])
        s.add(llama_nemotron(r["question"], think(thought, solution), "math", "on", "Sky-T1-math-correct-5K-14B"), [["user", r["question"]]], 1, group="on")
    for r in gsm8k[:4]:
        s.add(llama_nemotron(r["question"], r["answer"], "math", "off", "openai/grade-school-math"), [["user", r["question"]]], 1, group="gsm8k")
    for r in [a for a in alpaca if not a["input"]][:4]:
        s.add(llama_nemotron(r["instruction"], r["output"], "chat", "off", "alpaca_en_demo"), [["user", r["instruction"]]], 1, group="chat")
    write(out, s, expected)

    # AM-DeepSeek-R1-Distilled-1.4M: each turn's `info`; the answer turn in <think>/<answer> tags.
    info = pa.struct([("source", S), ("reference_answer", S), ("test_case", S), ("think_content", S), ("answer_content", S)])
    s = Set("AM-DeepSeek-R1-Distilled-1.4M", pa.schema([("messages", pa.list_(pa.struct([("role", S), ("content", S), ("info", info)])))]))
    for origin, r in [("amc23", r) for r in marked(amc)[12:18]] + [("math500", r) for r in marked(sky27)[140:146]]:
        thought, solution = split_sky(r["code"][0])
        s.add({"messages": [
            {"role": "user", "content": r["question"], "info": {
                "source": origin, "reference_answer": r["gt"], "test_case": None,
                "think_content": None, "answer_content": None}},
            {"role": "assistant", "content": f"<think>\n{thought}\n</think>\n<answer>\n{solution}\n</answer>", "info": {
                "source": "am-0309", "reference_answer": None, "test_case": None, "think_content": thought, "answer_content": solution}},
        ]}, [["user", r["question"]]], 1, group=origin)
    write(out, s, expected)

    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    for name, c in sorted(expected.items()):
        print(f"{name}: {c['rows']} rows, {c['prompts']} prompts, {c['samples']} samples, {c['verdicts']} verdicts")


OPENR1_CARD = """---
license: apache-2.0
language:
- en
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
dataset_info:
  config_name: default
  features:
  - name: problem
    dtype: string
  - name: solution
    dtype: string
  - name: answer
    dtype: string
  - name: problem_type
    dtype: string
  - name: question_type
    dtype: string
  - name: source
    dtype: string
  - name: uuid
    dtype: string
  - name: is_reasoning_complete
    sequence: bool
  - name: generations
    sequence: string
  - name: correctness_math_verify
    sequence: bool
  - name: correctness_llama
    sequence: bool
  - name: finish_reasons
    sequence: string
  - name: correctness_count
    dtype: int64
  - name: messages
    list:
    - name: content
      dtype: string
    - name: role
      dtype: string
  splits:
  - name: train
    num_examples: NUM_EXAMPLES
---

# OpenR1-Math-220k (test layout)

A downloaded dataset folder in OpenR1-Math-220k's layout and schema, written by retort's
tests/consumers/make_hub_sets.py from MATH500 generations (Sky-T1 27B, Qwen2.5-14B-Instruct)
with their stored verdicts. Not the real dataset.
"""

# The start of the .gitattributes the Hub gives a new dataset repository.
GITATTRIBUTES = """*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.lz4 filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--jsonl-only" in args:
        args.remove("--jsonl-only")
        JSONL_ONLY = True
    if "--rows" in args:
        at = args.index("--rows")
        ROWS = int(args[at + 1])
        del args[at:at + 2]
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit("usage: make_hub_sets.py OUTDIR [--rows N] [--jsonl-only]")
    main(args[0])
